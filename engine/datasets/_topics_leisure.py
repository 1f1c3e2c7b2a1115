"""Topic data: travel, food and leisure; creative writing and roleplay (format: see `taxonomy.py`)."""

DATA = r"""
= Travel, food and leisure
~ and asked for budget-friendly suggestions; and wanted options for a family with kids
~ and asked for a day-by-day plan; and wanted hidden gems rather than tourist traps
~ and asked what to avoid

# Trip itineraries
@ for a honeymoon; for a family with young kids; on a budget; for a solo traveler; in the spring
@ for a group of friends
* Plan trips to Japan
- plan a [seven-day|ten-day] itinerary in [Tokyo and Kyoto|Osaka and Hiroshima]
- decide whether a Japan Rail Pass is worth it
- see cherry blossoms and temples in Japan without crowds
* Plan trips to Italy and France
- plan a route through [Rome, Florence and Venice|Paris and Provence|the Amalfi Coast]
- book skip-the-line tickets for [the Vatican|the Louvre|the Uffizi]
- travel between Italian cities by train
* Plan road trips in the United States
- plan a road trip through [the national parks of Utah|Route 66|the Pacific Coast Highway]
- find scenic stops and motels along the drive
- estimate gas costs and daily driving distances
* Plan beach and island vacations
- choose between [Bali|the Maldives|Hawaii|Cancun] for a beach holiday
- pick an all-inclusive resort with snorkeling
- plan island hopping in [Greece|Thailand|the Philippines]
* Plan city weekend breaks
- spend a weekend in [Barcelona|Lisbon|New York|London] seeing the highlights
- find the best neighborhoods to stay in for [nightlife|a quiet stay]
- plan a 48-hour layover in [Istanbul|Singapore|Dubai]

# Travel logistics
@ for an international trip; for a first trip abroad; while traveling with a baby; for a business trip
@ on a tight timeline; when traveling from India
* Apply for visas and passports
- apply for a [Schengen|US tourist|UK visitor] visa and gather the documents
- renew a passport in time for a trip
- check entry requirements and transit visa rules
* Pack efficiently for trips
- pack a carry-on only bag for [two weeks|a winter trip]
- make a packing list for [a ski trip|a tropical vacation|a camping trip]
- bring medications and electronics through airport security
* Find cheap flights and hotels
- find cheaper flights with [flexible dates|fare alerts|budget airlines]
- compare [hotels and Airbnbs|hostels] for a stay
- use credit card points and airline miles
* Handle flight delays and lost luggage
- claim compensation for a [delayed|canceled] flight
- report lost luggage and get reimbursed
- rebook a missed connection
* Get around with local transport
- use public transit and metro passes in [Paris|Seoul|Mexico City]
- rent a car abroad and understand [the insurance|local driving rules]
- get from the airport to the city center cheaply

# Cooking and recipes
@ for a weeknight dinner; for a dinner party; with ingredients already in the fridge; for picky kids
@ in an air fryer; for a holiday meal
* Cook chicken dinners
- cook juicy chicken breasts [in the oven|on the stove] without drying them out
- make a [chicken curry|chicken stir-fry|roast chicken] from scratch
- marinate chicken thighs for grilling
* Bake bread and desserts
- bake sourdough bread with an open crumb
- fix [dense cakes|flat cookies|a runny cheesecake]
- adapt a [brownie|banana bread] recipe to be gluten-free
* Cook vegetarian and vegan meals
- make a high-protein [lentil|chickpea|tofu] dish
- replace eggs and butter in vegan baking
- cook a vegetarian main course for meat eaters
* Substitute ingredients and scale recipes
- substitute [buttermilk|heavy cream|fresh herbs] with pantry items
- scale a recipe from four servings to twelve
- convert [cups to grams|Fahrenheit to Celsius] for a recipe
* Cook international dishes
- make authentic [pad thai|ramen|paella|butter chicken] at home
- find substitutes for hard-to-find [Korean|Mexican|Ethiopian] ingredients
- make fresh pasta and a [carbonara|ragu] sauce

# Home improvement and gardening
@ in a rented apartment; on a small budget; as a first-time homeowner; in a cold climate
@ over a weekend; without hiring a professional
* Grow vegetables and houseplants
- grow [tomatoes|herbs|peppers] in containers on a balcony
- figure out why a [monstera|fiddle leaf fig|pothos] has yellow leaves
- plan a raised bed vegetable garden
* Fix plumbing and household repairs
- fix a [leaky faucet|running toilet|clogged drain]
- patch a hole in drywall and repaint
- reset a tripped breaker and replace a light switch
* Decorate and organize rooms
- choose paint colors for a [small living room|north-facing bedroom]
- organize a cluttered [closet|garage|kitchen] with storage ideas
- arrange furniture in an awkward room layout
* Clean stains and household messes
- remove [red wine|grease|mold] stains from [carpet|fabric|grout]
- clean a [washing machine|oven] naturally
- get rid of odors in a fridge or shoes
* Deal with pests in the home
- get rid of [fruit flies|ants|mice|bed bugs]
- prevent aphids on garden plants
- keep squirrels out of a bird feeder

# Games and hobbies
@ with friends on weekends; as a complete beginner; on a small budget; with their kids; after work
@ in their spare time
* Get video game strategies and builds
- build a strong character in [Elden Ring|Baldur's Gate 3|Diablo IV]
- beat a difficult boss in a video game
- optimize a base layout in [Minecraft|Factorio|Stardew Valley]
* Learn board games and card games
- understand the rules of [Catan|Ticket to Ride|poker hands|Magic: The Gathering]
- improve at chess tactics and endgames
- choose board games for [two players|a large party]
* Plan Dungeons and Dragons campaigns
- prepare a Dungeons and Dragons session as a first-time dungeon master
- design a [dungeon|boss encounter|puzzle room] for a D&D campaign
- balance combat for a party of four level 5 characters
* Start photography and art hobbies
- learn [aperture and shutter speed|composition] for photography
- start [watercolor painting|drawing portraits|knitting]
- choose a first [camera|drawing tablet]
* Solve puzzles and trivia
- solve a [crossword clue|riddle|logic puzzle]
- create trivia questions for a [pub quiz|family game night]
- find the answer to a Wordle-style word game

# Movie, book and music recommendations
@ for a rainy weekend; for a long flight; for a teenager; based on their favorites; for a book club
@ for a road trip
* Recommend movies and TV shows
- recommend movies similar to [Inception|Parasite|The Grand Budapest Hotel]
- find a TV series to binge like [Breaking Bad|The Office|Succession]
- pick a family movie for [movie night|Halloween]
* Recommend books to read
- recommend novels similar to [The Night Circus|Project Hail Mary|Pride and Prejudice]
- build a reading list of [fantasy series|classic literature|nonfiction about history]
- choose audiobooks for a commute
* Recommend music and podcasts
- find artists similar to [Radiohead|Taylor Swift|Bad Bunny]
- make a playlist for [running|studying|a dinner party]
- recommend podcasts about [true crime|economics|science]
* Explain plots and endings
- explain the ending of [a confusing film|Interstellar|a mystery novel]
- understand the themes of [a film|an album|a series] they just finished
- explain the timeline of a complex [time travel|multiverse] story
* Recommend anime and manga
- recommend anime like [Attack on Titan|Spirited Away|Demon Slayer]
- choose a manga for a beginner to start with
- decide in what order to watch a long anime franchise

= Creative writing and roleplay
~ and asked for vivid sensory details; and wanted a darker tone; and asked for a twist ending
~ and wanted it suitable for all ages; and asked to continue it in the next message

# Fiction and short stories
@ in the style of a fairy tale; set in the near future; for a writing contest; told in first person
@ in under 1,000 words; for a creative writing class
* Write fantasy stories
- write a fantasy story about [a young mage|a cursed forest|a dragon that hoards books]
- describe a magic duel between rival sorcerers
- write a quest tale with an unlikely hero
* Write science fiction stories
- write a science fiction story about [first contact|a generation ship|a rogue AI]
- describe life in a colony on [Mars|a frozen moon]
- write a story where a time loop resets every day
* Write mystery and thriller scenes
- write a murder mystery with a detective and three suspects
- plant clues and red herrings in a thriller
- build suspense in a chase scene
* Write romance scenes
- write a slow-burn romance between [rivals|coworkers|childhood friends]
- write a meet-cute in [a bookstore|an airport|a rainy cafe]
- write emotional dialogue for a reconciliation scene between lovers
* Write bedtime stories for children
- write a bedtime story about [a sleepy bear|a brave little robot|a lost kitten]
- create a picture book text that rhymes
- write a story teaching kids about [sharing|kindness|being brave]

# Poetry and song lyrics
@ for their partner's birthday; about autumn; for a school project; in a melancholic mood
@ with a hopeful ending; about the ocean
* Write love poems
- write a love poem for [their wife|their boyfriend|an anniversary card]
- write a sonnet about longing
- describe falling in love in a short poem
* Write haiku and short poetic forms
- write [a haiku|a limerick|a villanelle] about [the seasons|cats|city life]
- follow strict syllable counts in a poem
- write an acrostic poem spelling a name
* Write song lyrics
- write song lyrics with a catchy chorus about [heartbreak|summer|leaving home]
- write a verse for a [rap|country|pop] song
- fit lyrics to a melody and rhyme scheme
* Critique and revise their own poems
- get feedback on imagery and line breaks in their own poem
- improve the meter and rhyme of a draft poem
- find out what makes a poem's final stanza land
* Write poems for occasions
- write a poem for a [retirement card|funeral program|baby shower]
- write a rhyming toast poem for a birthday
- create a holiday poem for a family newsletter

# Interactive roleplay
@ in a medieval setting; in a cyberpunk city; in a cozy slice-of-life setting; with multiple characters
@ in a post-apocalyptic world; over many turns
* Roleplay adventure scenarios
- roleplay an adventure where the assistant narrates and the user plays [a knight|a space pirate|a detective]
- continue a text adventure with choices at each turn
- run a survival scenario with limited supplies
* Roleplay conversations with characters
- chat with the assistant playing [a historical figure|a fictional character|a wise mentor]
- roleplay with a friendly companion character who remembers details
- talk to a character inspired by a favorite anime
* Practice real-life conversations through roleplay
- rehearse [a job interview|asking for a raise|a breakup conversation] through roleplay
- roleplay a difficult customer so they can practice staying calm
- practice confronting someone with the assistant playing the other person
* Roleplay romance storylines
- roleplay a romantic storyline between two characters
- continue a flirtatious banter scene between characters
- write the next turn of a romance roleplay
* Run tabletop-style game master sessions
- have the assistant act as a game master for a solo tabletop campaign with dice rolls
- track inventory, hit points and quests during a game
- generate random encounters for a roleplaying session

# Worldbuilding
@ for a fantasy novel; for a tabletop campaign; for a video game concept; for a comic series
@ in a science fiction universe; in a low-magic world
* Design magic systems
- design a magic system with [clear costs|elemental rules|rune-based spells]
- balance magic so that it does not solve every plot problem
- explain how magic users are trained and regulated
* Create fictional countries and politics
- create the political system of a fictional [empire|kingdom|republic]
- design rival factions and their conflicts
- write the history of a war between two kingdoms
* Invent fictional languages and names
- invent names for [cities|characters|gods] that sound consistent
- create a simple constructed language with [grammar rules|a small vocabulary]
- design an alphabet for a fictional culture
* Design creatures and species
- design a creature [adapted to a desert planet|that lives in the deep ocean]
- create an alien species with its own [biology|culture|rituals]
- write a bestiary entry for a monster
* Map fictional geography and cities
- describe the geography, climate and trade routes of a continent
- design a city with districts, landmarks and slums
- figure out where rivers and mountains should sit on a fantasy map

# Scripts and story development
@ for a short film; for a YouTube channel; for a student project; for a podcast
@ in proper screenplay format; for a theater company
* Write screenplay scenes
- write a screenplay scene where [two siblings argue|a heist goes wrong|strangers meet on a train]
- format a script with sluglines, action lines and dialogue
- punch up dialogue so that characters sound distinct
* Write YouTube video scripts
- write a script for a YouTube video about [budget travel|a tech review|a cooking tutorial]
- hook viewers in the first 15 seconds of a video
- write a voiceover for a short documentary
* Write stage plays and sketches
- write a one-act play about [a family dinner|a job interview gone wrong]
- write a comedy sketch for [a school talent show|an office party]
- write a monologue for an audition
* Develop characters and plot outlines
- develop a protagonist with [a clear flaw|a backstory|a character arc]
- outline a three-act plot for a [thriller|coming-of-age story]
- fix a saggy middle in their story's plot
* Write podcast and audio drama scripts
- write an intro and outro for a podcast episode
- script an audio drama with sound effect cues
- write interview questions for a podcast guest

# Jokes and humor
@ for a family-friendly audience; for a coworker's farewell card; for a birthday party
@ for social media; for a stand-up open mic; for kids
* Write puns and one-liners
- come up with puns about [cheese|cats|programming|coffee]
- write one-liners for a [birthday card|office chat]
- make a dad joke about [math|the weather]
* Write roast jokes
- write lighthearted roast jokes for a friend's [30th birthday|bachelor party]
- roast a coworker gently without being mean
- write a funny introduction for a roast
* Write stand-up comedy bits
- write a five-minute stand-up set about [dating apps|living with parents|airports]
- improve timing and callbacks in a comedy routine
- write observational comedy about everyday life
* Create funny memes and captions
- write funny captions for [a pet photo|a group photo|a meme template]
- explain why a meme is funny
- come up with a witty username or bio
* Write humorous stories and parodies
- write a parody of [a famous poem|a news article|a song]
- write a funny story about a [disastrous vacation|talking refrigerator]
- rewrite a boring memo as a comedy piece
"""
