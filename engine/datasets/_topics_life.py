"""Topic data: personal advice and relationships; health, fitness and nutrition (format: see `taxonomy.py`)."""

DATA = r"""
= Personal advice and relationships
~ and asked what they should say; and wanted an honest outside perspective
~ and asked for practical steps; and wanted to avoid making things worse
~ and asked whether their feelings were normal

# Romantic relationships
@ while feeling anxious about it; without hurting anyone; after weeks of overthinking
@ before talking to friends about it; in their twenties; in their forties
* Navigate online dating
- write a dating app profile bio that stands out
- start conversations with matches on [Hinge|Tinder|Bumble]
- plan a [first date|second date] that feels low pressure
* Resolve arguments with a partner
- resolve recurring fights with their partner about [chores|money|in-laws]
- apologize to their partner after saying something hurtful
- communicate needs without blaming their partner
* Cope with breakups
- cope with a breakup and stop checking an ex's social media
- decide whether to get back together with an ex
- move on after being [ghosted|cheated on]
* Handle long-distance relationships
- keep a long-distance relationship close across time zones
- plan visits and decide who should relocate to be together
- deal with jealousy when their long-distance partner goes out
* Decide about commitment and marriage
- decide whether they are ready to [move in together|get engaged]
- plan a marriage proposal that fits their partner
- talk about [having children|shared finances] before marriage

# Parenting and family
@ as a single parent; as a first-time parent; while working full time; with limited family support
@ in a blended family; without yelling
* Manage toddler tantrums and sleep
- handle toddler tantrums in public
- build a bedtime routine for a [two-year-old|three-year-old] who refuses to sleep
- start potty training a toddler who is not ready
* Set limits on teen screen time
- set rules for a teenager's [phone use|gaming|social media]
- talk to a teenager who has become withdrawn
- handle a teen who breaks curfew
* Support children with school and homework
- help a child who [struggles with reading|hates homework|is being bullied at school]
- prepare a child for starting at a new school
- talk with teachers about [a learning difference|ADHD]
* Care for aging parents
- care for an aging parent with [dementia|mobility problems]
- discuss assisted living options with siblings
- manage caregiver burnout while looking after a parent
* Handle conflict with siblings and in-laws
- set boundaries with [in-laws|a mother-in-law] who visit unannounced
- deal with sibling disagreements over [an inheritance|holiday plans]
- reconnect with an estranged [brother|sister|father]

# Friendships and social situations
@ after moving to a new city; at university; at work; in their thirties; as an introvert
@ without seeming rude
* Make new friends as an adult
- make new friends as an adult through [clubs|classes|volunteering]
- turn acquaintances into close friends
- keep in touch with friends who live far away
* Handle conflicts with friends
- confront a friend who keeps [canceling plans|borrowing money|making hurtful jokes]
- repair a friendship after a misunderstanding
- decide whether to end a one-sided friendship
* Overcome social anxiety and small talk
- make small talk at [parties|networking events|family gatherings]
- feel less awkward in group conversations
- prepare conversation topics before meeting new people
* Respond to awkward messages and texts
- reply to a text from [an ex|an old friend|a coworker] that felt passive aggressive
- word a group chat message declining an invitation
- respond to a friend's bad news over text
* Plan gifts and celebrations for friends
- choose a birthday gift for a friend who [loves cooking|has everything|just had a baby]
- plan a surprise party on a budget
- write a heartfelt message for a birthday card

# Workplace conflicts and career decisions
@ at a large company; at a startup; after a bad performance review; in their first job
@ after ten years in the industry; while feeling stuck
* Deal with a difficult boss
- deal with a boss who [micromanages|takes credit for their work|yells in meetings]
- ask a manager for clearer expectations
- report a manager's behavior to HR
* Handle conflicts with coworkers
- handle a coworker who [interrupts constantly|misses deadlines|gossips]
- share credit fairly on a group project
- address a coworker's comment that felt discriminatory
* Decide whether to quit a job
- decide whether to quit a stable job for [a startup|freelancing|graduate school]
- write a resignation letter and tell their manager
- weigh staying for a promotion against leaving
* Change careers
- switch careers from [teaching to tech|nursing to healthcare administration|retail to marketing]
- find transferable skills for a new field
- decide which [bootcamp|certification|degree] to pursue
* Avoid burnout and set work boundaries
- stop answering work messages after hours
- say no to extra work when already overloaded
- recover from burnout without quitting
# Stress, anxiety and motivation
@ during exam season; after a stressful month; while working from home; on a tight schedule
@ during a difficult year; using simple daily habits
* Manage anxiety and racing thoughts
- calm racing thoughts before [sleep|a presentation|a medical appointment]
- try grounding techniques during a panic attack
- challenge catastrophic thinking with journaling
* Overcome procrastination
- stop procrastinating on [a thesis|a big work project|household chores]
- break an overwhelming task into small steps
- use the Pomodoro technique to stay focused
* Build confidence and self-esteem
- stop comparing themselves to others on social media
- handle harsh self-criticism and imposter syndrome
- feel more confident speaking up in meetings
* Cope with loneliness and grief
- cope with loneliness after [moving abroad|retirement|friends drifting away]
- process grief after losing [a pet|a grandparent|a friend]
- find support groups and reach out to people
* Build daily routines and habits
- build a morning routine they can stick to
- track habits like [reading|journaling|practicing gratitude] every day
- regain motivation after [a setback|a long break]

# Personal finance and budgeting
@ on a salary of about [40,000|70,000] a year; as a college student; as a young family
@ while paying rent in a big city; in the UK; in India
* Create a monthly budget
- create a monthly budget with the [50/30/20 rule|zero-based method]
- cut spending on [groceries|subscriptions|eating out]
- track expenses with an app or a spreadsheet
* Pay off debt
- choose between the debt snowball and avalanche methods
- pay off [credit card debt|student loans|a car loan] faster
- decide whether to consolidate debt with a personal loan
* Start investing for retirement
- start investing in [index funds|ETFs|a 401k|a Roth IRA] as a beginner
- understand [compound interest|expense ratios|diversification]
- decide how much to invest versus keep as savings
* Save for a home purchase
- save for a down payment on a first home
- compare [fixed and variable rate mortgages|renting and buying]
- understand closing costs and mortgage pre-approval
* Build an emergency fund and savings goals
- build an emergency fund covering [three|six] months of expenses
- pick a high-yield savings account
- save for [a wedding|a vacation|a new car] on a tight income

= Health, fitness and nutrition
~ and asked whether they should see a doctor; and wanted a simple plan they can follow
~ and asked for beginner-friendly options; and mentioned they have limited time
~ and asked what the research says

# Strength training and workouts
@ at home with dumbbells; at a commercial gym; three days a week; as a beginner; after a long break
@ in under 45 minutes
* Design strength training programs
- design a [push pull legs|full body|upper lower] workout split
- progress from a beginner to an intermediate strength program
- choose sets, reps and rest times for muscle growth
* Improve squat and deadlift form
- fix their squat form when [the knees cave in|the heels lift|the lower back rounds]
- avoid lower back pain during deadlifts
- warm up properly before heavy lifts
* Build muscle and bulk up
- gain muscle as a skinny beginner
- eat enough protein to support muscle growth while bulking
- break through a plateau in [bench press|pull-ups]
* Plan bodyweight and home workouts
- build a bodyweight routine with [push-ups|dips|lunges] and no equipment
- do a 20-minute HIIT workout in a small apartment
- get a first pull-up using resistance bands
* Recover from workouts and prevent injuries
- reduce muscle soreness after [leg day|a hard workout]
- decide how many rest days they need each week
- work around a [shoulder|knee|wrist] injury while training

# Running and endurance training
@ for a first race; with a busy schedule; in hot weather; as a beginner; after the age of forty
@ on four runs a week
* Train for a first 5K
- follow a couch to 5K plan
- run a 5K without stopping to walk
- pace a first [5K|parkrun] race
* Train for a marathon
- build a [16-week|20-week] marathon training plan
- fuel with gels during long runs for a marathon
- taper before marathon day and set a goal finish time
* Improve running pace and endurance
- get faster with [intervals|tempo runs|hill repeats]
- increase weekly mileage without getting injured
- improve running cadence and breathing
* Train for cycling and triathlon
- train for a [sprint triathlon|century bike ride|duathlon]
- improve open water swimming for a triathlon
- set up an indoor cycling trainer plan with power zones
* Treat running injuries
- deal with [shin splints|runner's knee|plantar fasciitis] when running
- choose running shoes for [flat feet|overpronation]
- return to running after an injury

# Nutrition and meal planning
@ on a budget; for a family of four; with a busy work schedule; as a vegetarian; for weight loss
@ for an athlete
* Plan weekly meal prep
- plan a week of meal prep with a grocery list
- batch cook lunches that keep well in the fridge
- make healthy breakfasts they can prepare in five minutes
* Count calories and macros
- calculate daily calories and macros for [losing fat|maintaining weight]
- hit a protein target of [120|150] grams a day
- read nutrition labels and portion sizes
* Follow specific diets
- follow a [keto|Mediterranean|low FODMAP|vegan] diet without nutrient gaps
- try intermittent fasting with a [16:8|5:2] schedule
- eat well with [celiac disease|lactose intolerance]
* Manage diabetes and cholesterol with diet
- plan meals that keep blood sugar stable with type 2 diabetes
- lower LDL cholesterol through diet changes
- choose snacks with a low glycemic index
* Lose weight sustainably
- lose weight after [pregnancy|a slower metabolism in their forties]
- stop late-night snacking and emotional eating
- break through a weight loss plateau

# Symptoms and medical conditions
@ before a doctor's appointment; for a family member; over the past [week|month]; while traveling
@ for a child; as someone with asthma
* Understand headaches and migraines
- understand what could cause [daily headaches|migraines with aura|tension headaches]
- track migraine triggers such as [caffeine|screen time|poor sleep]
- decide when a headache needs urgent care
* Interpret blood test and lab results
- interpret blood test results showing [low vitamin D|high ALT|low ferritin]
- understand what a [thyroid panel|complete blood count|HbA1c test] measures
- prepare questions about abnormal lab values
* Manage allergies and skin conditions
- calm [eczema flare-ups|hives|acne] and choose gentle skincare
- manage seasonal allergies and pollen
- identify a rash that appeared after [a new detergent|a hike]
* Understand digestive problems
- understand the causes of [bloating|acid reflux|IBS symptoms]
- identify foods that trigger stomach pain
- know when diarrhea needs medical attention
* Learn about chronic conditions
- understand a new diagnosis of [hypothyroidism|PCOS|high blood pressure]
- explain [rheumatoid arthritis|multiple sclerosis] in simple terms
- live with chronic pain day to day

# Medications and supplements
@ for an elderly parent; while pregnant; alongside other prescriptions; for a teenager
@ at the lowest effective dose; before asking a pharmacist
* Check drug interactions
- check whether [ibuprofen|antihistamines|alcohol] interacts with their prescription
- take [two medications|blood thinners] safely together
- space out doses of [antibiotics|thyroid medication]
* Understand medication side effects
- understand the side effects of [SSRIs|statins|birth control pills]
- deal with nausea from a new medication
- know which side effects should be reported
* Choose vitamins and supplements
- decide whether to take [vitamin D|magnesium|creatine|fish oil] supplements
- choose a multivitamin and avoid megadoses
- take iron supplements without stomach upset
* Taper off or switch medications
- talk to their doctor about tapering off [an antidepressant|sleeping pills]
- understand withdrawal symptoms when switching medications
- handle a missed dose of a daily medication
* Understand vaccines
- understand which vaccines are recommended for [adults|travel abroad|infants]
- handle common reactions after [a flu shot|a booster]
- read a vaccination schedule

# Sleep and healthy habits
@ while working night shifts; with a newborn at home; as a student; in a noisy apartment
@ at age fifty; during menopause
* Fix insomnia and sleep schedules
- fall asleep faster instead of lying awake for hours
- fix a sleep schedule shifted by [jet lag|late-night gaming|shift work]
- use [sleep hygiene|CBT for insomnia] techniques
* Reduce caffeine and alcohol
- cut back on [coffee|energy drinks|alcohol] without withdrawal headaches
- try a dry January challenge
- swap afternoon caffeine for alternatives
* Quit smoking and vaping
- quit [smoking|vaping|nicotine pouches] and handle cravings
- choose between nicotine patches and gum
- stay smoke-free after a relapse
* Reduce screen time
- reduce phone screen time and doomscrolling
- set up app limits and a [digital detox|phone-free bedroom]
- protect their eyes from strain after long hours at a computer
* Practice meditation and mindfulness
- start a daily meditation practice of [five|ten] minutes
- try breathing exercises such as [box breathing|the 4-7-8 method]
- choose between [Headspace|Calm|guided meditations on YouTube]
"""
