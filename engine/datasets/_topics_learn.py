"""Topic data: languages and translation; science, math and teaching (format: see `taxonomy.py`)."""

DATA = r"""
= Languages and translation
~ and asked for the most natural phrasing; and wanted a short explanation of the grammar
~ and asked for example sentences; and wanted to know the formal and informal versions
~ and asked how a native speaker would say it

# Translating documents and messages
@ for a Spanish-speaking audience; for relatives who read Chinese; for a French pen pal
@ for colleagues in Japan; for a German landlord; for a Brazilian client
* Translate business and legal documents
- translate [a contract clause|a business letter|an invoice] while keeping formal terms
- translate official documents for [a visa application|a university]
- check a machine translation of a [policy|legal notice] for errors
* Translate personal messages
- translate a [birthday message|condolence note|text to their in-laws]
- translate a message to a host family
- translate a love note so that it does not sound awkward
* Translate website and app text
- translate [app interface strings|a product page|a privacy notice]
- localize marketing copy for a different culture
- keep placeholders and formatting intact while translating UI text
* Translate recipes and menus
- translate a [restaurant menu|family recipe] with cooking terms
- convert ingredient names and measurements in a translated recipe
- explain dish names that have no direct translation
* Translate songs and literature
- translate [song lyrics|a poem|a short story] while keeping the rhythm
- compare literal and poetic translations of a passage
- translate idiomatic dialogue in a novel

# English grammar for learners
@ for an IELTS exam; as a Spanish speaker; as a Chinese speaker; for business English
@ at an intermediate level; with many examples
* Use English verb tenses
- understand when to use [the present perfect|the past simple|the past perfect]
- use [the future continuous|conditional sentences] correctly
- fix tense mistakes in a short paragraph
* Use articles and prepositions
- choose between [a, an and the|in, on and at] in sentences
- understand why some nouns take no article
- use prepositions with [time expressions|places]
* Write English for exams
- write an IELTS [task 2 essay|task 1 report] that scores band 7
- prepare for the [TOEFL|Cambridge] speaking test
- improve vocabulary range for an exam essay
* Learn phrasal verbs
- understand phrasal verbs like [give up|put off|get over|run into]
- use separable and inseparable phrasal verbs correctly
- replace formal verbs with natural phrasal verbs
* Fix common English mistakes
- correct common mistakes like [since and for|make and do|its and it's]
- improve word order in English questions
- understand countable and uncountable nouns

# Idioms, slang and vocabulary
@ in American English; in British English; for everyday conversation; for a trip abroad
@ used by teenagers; in a workplace setting
* Explain idioms and expressions
- explain what idioms like [break the ice|spill the beans|under the weather] mean
- use idioms naturally in conversation
- find the equivalent of an idiom in another language
* Understand internet slang
- understand slang like [rizz|no cap|the ick|delulu]
- decode abbreviations in [text messages|gaming chat]
- know whether a slang word is offensive
* Learn vocabulary with flashcards
- build an Anki flashcard deck for [1000 common words|medical vocabulary]
- memorize new words with spaced repetition
- learn [synonyms|word families] to expand vocabulary
* Learn business vocabulary
- learn vocabulary for [meetings|negotiations|presentations] in a second language
- sound professional in emails written in a second language
- use polite phrases for disagreeing at work
* Understand word origins and meanings
- understand the etymology of words like [salary|quarantine|robot]
- explain the difference between [economic and economical|historic and historical|compliment and complement]
- find the meaning of a word with several senses

# Conversation practice and tutoring
@ at a beginner level; before a trip abroad; with corrections after each reply; in short messages
@ three times a week; with a patient tutor persona
* Practice ordering food and shopping dialogues
- practice a dialogue for [ordering at a restaurant|buying groceries|haggling at a market] in the target language
- learn phrases for asking prices and paying
- rehearse ordering at a cafe in a foreign language
* Practice small talk about daily life
- chat about [hobbies|weekend plans|the weather] in the language they are learning
- describe their daily routine and get corrections
- keep a casual conversation going with follow-up questions
* Practice job interview answers in a second language
- answer interview questions in [English|German|French] and get feedback
- describe their work experience in a second language
- practice sounding confident in a foreign-language interview
* Improve pronunciation and accent
- improve pronunciation of [the English th sound|French nasal vowels|the rolled Spanish r]
- reduce a strong accent when speaking
- understand stress and intonation patterns
* Create a language study plan
- create a study plan to reach [B1|B2|conversational fluency] in a year
- choose between [Duolingo|a tutor|immersion] for learning a language
- stay consistent with daily language practice

# Learning Asian languages
@ as a complete beginner; before moving abroad; through dramas and music; with an hour a day
@ as a heritage speaker; using textbooks and apps
* Learn Japanese kanji and kana
- memorize [hiragana and katakana|the first 100 kanji]
- understand kanji radicals and stroke order
- read Japanese with furigana
* Learn Japanese grammar and politeness
- understand the Japanese particles [wa and ga|ni and de]
- use keigo and polite forms when speaking to a boss in Japanese
- conjugate Japanese verbs into the te-form
* Learn Mandarin Chinese tones and characters
- master the four Mandarin tones and pinyin
- learn simplified Chinese characters efficiently
- understand measure words in Chinese
* Learn Korean hangul and grammar
- read hangul and understand Korean syllable blocks
- use Korean honorifics and speech levels
- learn Korean through K-dramas and song lyrics
* Learn Hindi and other South Asian languages
- learn the Devanagari script for Hindi
- understand gendered verbs in [Hindi|Urdu]
- learn basic [Tamil|Bengali] phrases for family visits

# Learning European languages
@ as a complete beginner; before moving to Europe; as a heritage speaker; for a university course
@ using podcasts; with a tutor once a week
* Learn Spanish verb conjugations
- use the Spanish subjunctive after [expressions of doubt|ojala|cuando]
- choose between ser and estar in Spanish
- conjugate Spanish verbs in the preterite and imperfect
* Learn French grammar and gender
- remember the gender of French nouns
- use the passe compose and imparfait correctly in French
- understand French liaison and silent letters
* Learn German cases and word order
- understand the German [accusative|dative|genitive] case
- put verbs in the right place in German subordinate clauses
- learn German adjective endings
* Learn Italian and Portuguese basics
- learn basic Italian phrases for [travel|family dinners]
- understand differences between Brazilian and European Portuguese
- conjugate common Portuguese verbs
* Learn Russian and Slavic languages
- learn the Cyrillic alphabet
- understand Russian verb aspects and cases
- learn Polish pronunciation and spelling

= Science, math and teaching
~ and asked for a step-by-step solution; and wanted an intuitive explanation
~ and asked for practice problems; and wanted to check their own answer
~ and asked how it connects to real life

# Algebra and precalculus
@ for a homework assignment; for the SAT; for a high school class; before a test tomorrow
@ for a community college course; for their child's homework
* Solve linear equations and inequalities
- solve a system of linear equations with [substitution|elimination]
- solve inequalities and graph the solution on a number line
- set up equations from a word problem about [ages|mixtures|distance and speed]
* Factor and solve quadratics
- factor a quadratic and find its roots
- use the quadratic formula and interpret the discriminant
- complete the square to find a parabola's vertex
* Work with exponents and logarithms
- simplify expressions with exponents and radicals
- solve [exponential growth|half-life|logarithmic] equations
- use logarithm rules to expand an expression
* Solve trigonometry problems
- find missing sides and angles with [SOH CAH TOA|the law of sines|the law of cosines]
- prove a trigonometric identity
- convert between degrees and radians on the unit circle
* Understand functions and graphs
- find the domain and range of a function
- describe transformations of a function's graph
- find the inverse of a function and compose functions

# Calculus and linear algebra
@ for a university course; for AP Calculus; for an engineering degree; before a final exam
@ for a physics class; for self-study
* Compute derivatives
- differentiate a function with the [chain rule|product rule|quotient rule]
- find local maxima and minima with derivatives
- solve a related rates problem about a [sliding ladder|filling tank]
* Evaluate integrals
- evaluate an integral using [substitution|integration by parts|partial fractions]
- find the area between two curves with an integral
- compute a volume of revolution
* Understand limits and series
- evaluate a limit with L'Hopital's rule
- test whether a series converges with [the ratio test|the comparison test]
- find a Taylor series expansion
* Solve matrix and vector problems
- compute [a determinant|an inverse matrix|eigenvalues and eigenvectors]
- solve a linear system with Gaussian elimination
- understand linear independence and the rank of a matrix
* Solve differential equations
- solve a [separable|first-order linear|second-order] differential equation
- model a cooling cup of coffee with a differential equation
- use Laplace transforms on an initial value problem

# Physics
@ for a high school physics class; for an introductory college course; for an exam; with SI units
@ for the MCAT; for a lab report
* Solve kinematics and force problems
- find the range of a projectile launched at [30|45] degrees
- solve for acceleration and displacement with the kinematic equations
- draw free body diagrams for [an inclined plane|a pulley system]
* Apply energy and momentum conservation
- use conservation of energy for a [roller coaster|pendulum|spring]
- solve an elastic collision with conservation of momentum
- calculate work, power and efficiency
* Analyze electric circuits
- find the current through resistors in [series|parallel] with Ohm's law
- apply Kirchhoff's laws to a circuit with two loops
- understand how capacitors charge in an RC circuit
* Understand waves, optics and sound
- understand the Doppler effect and wave frequency
- use Snell's law to find the refraction angle
- explain interference in the double slit experiment
* Understand relativity and quantum physics
- explain [time dilation|the twin paradox|length contraction] intuitively
- understand wave-particle duality and the uncertainty principle
- explain quantum entanglement without math

# Chemistry
@ for a general chemistry class; for an organic chemistry course; for a lab report; for the AP exam
@ before a quiz; with worked examples
* Balance equations and stoichiometry
- balance a chemical equation for [combustion|a redox reaction]
- find the limiting reagent and percent yield
- convert grams to moles in a stoichiometry problem
* Understand organic reaction mechanisms
- draw the mechanism of [an SN1|an SN2|an E2] reaction
- name organic compounds with IUPAC rules
- predict the products of reactions with [alkenes|carbonyls]
* Calculate acids, bases and pH
- calculate the pH of a [buffer|weak acid] solution
- interpret a titration curve and its equivalence point
- use the Henderson-Hasselbalch equation
* Understand atomic structure and bonding
- write electron configurations and orbital diagrams
- draw Lewis structures and predict molecular geometry with VSEPR
- explain [ionic and covalent bonds|periodic trends]
* Apply thermodynamics and kinetics
- calculate an enthalpy change with Hess's law
- determine a rate law from experimental data
- decide whether a reaction is spontaneous using Gibbs free energy

# Biology and genetics
@ for a biology class; for an exam; for nursing school; for the MCAT; with a diagram
@ for a research project
* Solve genetics and Punnett square problems
- solve a Punnett square for [a dihybrid cross|eye color|a sex-linked trait]
- explain dominant and recessive alleles
- read a pedigree chart
* Understand cell biology
- explain [mitosis and meiosis|cellular respiration|photosynthesis] step by step
- compare organelles in plant and animal cells
- understand how the cell membrane transports molecules
* Understand human anatomy and physiology
- explain how the [heart|kidneys|nervous system] works
- memorize the bones and muscles of the arm
- understand how hormones regulate [the menstrual cycle|body temperature]
* Understand DNA and molecular biology
- explain DNA replication, transcription and translation
- understand how CRISPR gene editing works
- design PCR primers for an experiment
* Study ecology and evolution
- explain natural selection with examples
- describe food webs and energy flow in an ecosystem
- understand speciation and evolutionary trees

# Lesson planning and teaching
@ for a fifth grade class; for high school students; for an online course; for adult learners
@ for a mixed-ability classroom; in a 45-minute period
* Create lesson plans
- create a lesson plan on [fractions|the water cycle|the American Revolution] with objectives
- design a hands-on activity for [photosynthesis|persuasive writing]
- align a lesson with learning standards
* Write quizzes and exam questions
- write multiple choice questions with plausible distractors on [World War II|cell biology|algebra]
- create a quiz with an answer key
- write short-answer questions that test understanding
* Design grading rubrics
- design a rubric for [an essay|a science fair project|a group presentation]
- write feedback comments on student work
- grade fairly and consistently across students
* Manage classroom behavior
- manage a disruptive student in class
- set up classroom routines and rules for a new year
- keep students engaged during [online classes|long lectures]
* Support students with different needs
- adapt materials for students with [dyslexia|autism|limited English]
- differentiate instruction for advanced learners
- write an email to parents about a student's progress
"""
