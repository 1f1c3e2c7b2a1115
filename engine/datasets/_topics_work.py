"""Topic data: writing and editing; business, marketing and careers (format: see `taxonomy.py`)."""

DATA = r"""
= Writing and editing
~ and asked for a more professional tone; and wanted it to sound natural
~ keeping it under [150|200|300] words; and asked for two alternative versions
~ and wanted feedback on clarity

# Professional emails
@ addressed to their [manager|professor|client]; in a polite but firm tone; in a warm tone
@ for a small business; for a large company; sent on behalf of their team
* Request deadline extensions by email
- write an email asking for an extension on [a project deadline|an assignment|a report]
- explain a delay and propose a new [due date|timeline] in an email
- ask politely for more time because of [illness|a family emergency|competing priorities]
* Follow up on unanswered emails
- write a follow-up email after [no reply to a proposal|a job interview|an unanswered question]
- nudge a [vendor|colleague|client] who has not responded in two weeks
- send a gentle reminder about [a pending approval|a signature they still need]
* Decline requests and invitations politely
- decline [a meeting invitation|a job offer|a speaking request|an extra project] politely
- say no to [a client's scope change|a favor from a coworker] without burning bridges
- turn down [a partnership proposal|a vendor pitch] gracefully
* Apologize to customers and clients
- write an apology email to a customer about [a shipping delay|a billing error|a service outage]
- respond to an angry client complaint and offer [a refund|a discount|a fix]
- acknowledge a mistake in a report that was sent to a client
* Announce changes to a team
- announce [a new remote work policy|a reorganization|an office move] to the team
- write an internal memo about [new expense rules|holiday schedules|a software rollout]
- introduce a new team member in a welcome email

# Academic writing
@ for a university course; for a master's thesis; for a journal submission; for a high school class
@ in the field of [psychology|sociology|biology|history]
* Craft essay thesis statements and outlines
- write a strong thesis statement for an essay on [climate policy|social media and teens|the French Revolution]
- outline an argumentative essay with [counterarguments|five paragraphs]
- turn rough notes into a structured essay outline
* Write literature reviews
- organize sources into themes for a literature review on [remote learning|microplastics|burnout]
- synthesize findings from several studies instead of summarizing them one by one
- identify research gaps [to justify a study|in the existing literature]
* Format citations in APA and MLA
- format references in [APA 7th edition|MLA 9|Chicago style|Harvard style]
- cite [a website with no author|a YouTube video|a government report] correctly
- fix in-text citations and the [ordering|formatting] of a reference list
* Draft research paper abstracts and sections
- write a 250-word abstract summarizing [the methods and results|a study on sleep and memory]
- condense a paper's introduction and conclusion into an abstract
- draft the [methods section|discussion section|limitations paragraph] of a research paper
* Paraphrase sources to avoid plagiarism
- paraphrase a paragraph from a [journal article|textbook] in their own words
- reword sentences that a plagiarism checker flagged
- decide when to quote and when to paraphrase a source
# Editing and proofreading
@ for a cover email; in a business report; in a personal essay; in a newsletter draft; in a short bio
@ on a website page
* Fix grammar and punctuation
- proofread a paragraph for [comma splices|run-on sentences|subject-verb agreement]
- fix grammar and spelling mistakes in [a draft|a long document]
- check whether to use [a semicolon or a comma|who or whom|affect or effect]
* Make text shorter and more concise
- cut a [600-word|long|rambling] draft down to half its length
- remove filler words and redundant phrases
- tighten wordy sentences into [bullet points|short paragraphs]
* Adjust the tone of a text
- make a message sound [more formal|friendlier|more confident|less passive aggressive]
- soften blunt feedback without losing the main point
- rewrite a text to sound [less robotic|more persuasive|more empathetic]
* Improve flow and paragraph structure
- reorder paragraphs so that an argument flows logically
- add transitions between sections of a [report|story|essay]
- rewrite a confusing introduction and a weak conclusion
* Rewrite text in plain language
- simplify [legal jargon|technical documentation|a medical leaflet] for a general audience
- lower the reading level of a text for [children|non-native speakers]
- explain acronyms and define technical terms in a document

# Speeches and toasts
@ lasting about [two|three|five] minutes; for an audience of [fifty|two hundred] people
@ with a touch of humor; that feels personal and heartfelt
* Write wedding toasts
- write a best man speech with [funny stories about the groom|a heartfelt ending]
- draft a maid of honor toast for [their sister|a childhood friend]
- write a father of the bride speech welcoming the new family
* Write eulogies
- write a eulogy for [their grandmother|their father|a close friend] who loved [gardening|fishing|music]
- share memories at a memorial service without breaking down
- structure a funeral tribute with [anecdotes|a closing poem]
* Prepare conference talks and presentations
- outline a [10-minute|20-minute] conference talk about [their research|a product launch]
- write speaker notes for presentation slides
- open a keynote with a memorable hook
* Write graduation and award speeches
- write a valedictorian speech for [high school|college] graduation
- prepare an acceptance speech for [an employee award|a community honor]
- thank mentors and classmates in a commencement address
* Write retirement and farewell speeches
- write a farewell speech for [a retiring colleague|their own last day at work]
- toast a [boss|teacher|nurse] who is retiring after 30 years
- say goodbye to a team when [leaving a job|moving abroad]

# Blog posts and articles
@ for a personal blog; for a company website; for Medium; for a niche newsletter; aimed at beginners
@ optimized for search engines
* Write how-to guides and listicles
- write a how-to guide on [choosing a standing desk|setting up a home office|learning to code]
- draft a listicle of [ten productivity tips|the best hiking trails|beginner mistakes]
- structure a step-by-step tutorial with headings and screenshots
* Write opinion pieces and op-eds
- write an op-ed arguing [for public transit funding|against homework bans|for a four-day work week]
- strengthen a persuasive argument with [evidence|rebuttals]
- pitch an opinion column to a local newspaper
* Write book and product reviews
- write a review of [a novel they just finished|a pair of headphones|a restaurant]
- balance praise and criticism in a [book|gadget] review
- give star ratings with short justifications
* Write newsletter issues
- draft a monthly newsletter for [a nonprofit|a neighborhood association|a bakery]
- write catchy subject lines and intros for an email newsletter
- summarize the month's news for newsletter subscribers
* Write personal essays and memoir pieces
- write a personal essay about [moving to a new country|losing a parent|overcoming a setback]
- turn a childhood memory into a memoir chapter
- find a reflective ending for a personal essay

# Summarizing documents
@ for a busy executive; as bullet points; in under 200 words; for a study group; in plain English
@ for a team update
* Summarize meeting notes and transcripts
- summarize a meeting transcript into [decisions and action items|key takeaways]
- turn [Zoom call notes|standup notes] into a short recap email
- extract who owns each action item from meeting minutes
* Summarize research articles
- summarize a research paper on [the gut microbiome|large language models|climate modeling]
- explain the key findings and limitations of a scientific study
- compare the conclusions of two articles on [nutrition|education policy]
* Summarize legal documents and contracts
- summarize the key terms of [a lease agreement|an employment contract|a terms of service page]
- flag unusual clauses about [termination|liability|non-compete] in a contract
- explain what a [contract clause|NDA] means in everyday language
* Summarize books and chapters
- summarize chapters of [a novel|a history textbook|a self-help book] for revision
- give a plot summary and the main themes of [a classic novel|a play]
- condense a nonfiction book into key lessons
* Summarize long reports and email threads
- condense a [40-page|long] annual report into an executive summary
- summarize a long email thread and what is being asked of them
- pull the main numbers and conclusions from a [policy brief|market report]

= Business, marketing and careers
~ and asked for a template they can reuse; and wanted ideas that fit a small budget
~ and asked for concrete next steps; and wanted it tailored to their industry
~ and asked how to measure success

# Marketing and social media
@ for a small coffee shop; for a SaaS startup; for an online clothing brand; for a local gym
@ for a nonprofit; for a handmade jewelry store
* Write social media captions and posts
- write Instagram captions for [a product launch|a holiday sale|behind-the-scenes photos]
- plan a month of [LinkedIn posts|TikTok video ideas|Facebook posts]
- come up with hashtags and hooks for short videos
* Plan email marketing campaigns
- design an email drip campaign for [new subscribers|abandoned carts|trial users]
- improve [open rates|click-through rates] on marketing emails
- segment a mailing list for a promotional campaign
* Write product descriptions and ad copy
- write product descriptions for [scented candles|running shoes|a skincare serum]
- write Google Ads headlines and descriptions under the character limits
- draft landing page copy with a clear call to action
* Develop brand identity and names
- brainstorm names for a new [bakery|podcast|app|consulting firm]
- write a brand mission statement and tagline
- define a brand voice and a target customer persona
* Improve SEO and website traffic
- find keywords to target for [a dental clinic|an online course|a wedding venue]
- write meta titles and meta descriptions for [product pages|blog posts]
- improve search rankings with backlinks and internal linking

# Business strategy and planning
@ for a food truck; for a software startup; for a family-owned restaurant; for a consulting business
@ for an e-commerce store; before pitching investors
* Write business plans
- write a business plan with [a market analysis|financial projections|an executive summary]
- draft a one-page lean canvas
- estimate startup costs and the break-even point
* Analyze competitors and markets
- do a SWOT analysis [of their company|against a larger competitor]
- estimate the market size with [TAM SAM SOM|top-down and bottom-up methods]
- compare competitors' pricing and features in a table
* Set product pricing
- choose between [subscription|one-time|tiered] pricing for a product
- calculate margins and a price that covers costs
- decide whether to offer [discounts|a free tier|annual plans]
* Prepare investor pitch decks
- structure a pitch deck for a [seed round|pre-seed raise]
- answer tough investor questions about [traction|valuation|competition]
- write a cold email to [angel investors|venture capital firms]
* Set goals and OKRs
- write quarterly OKRs for [a marketing team|an engineering team|the company]
- turn a vague strategy into measurable KPIs
- run a planning session to prioritize initiatives

# Sales and customer support
@ for a B2B software company; for a real estate agency; for an insurance agency; for a subscription box
@ for a wedding photography business; for an IT services firm
* Write cold outreach and sales emails
- write a cold email to [potential clients|procurement managers|local businesses] that gets replies
- draft a sales follow-up sequence after a demo
- personalize outreach messages on LinkedIn
* Handle sales objections and negotiation
- respond to [price objections|a prospect who says they are happy with their vendor]
- prepare for a contract negotiation with a large customer
- write a script for discovery calls
* Reply to customer support tickets
- reply to a customer asking for a refund outside the return window
- write canned responses for [shipping questions|password resets|billing disputes]
- de-escalate a frustrated customer on live chat
* Respond to online reviews
- reply to a negative [Google|Yelp|Tripadvisor] review professionally
- thank customers for positive reviews without sounding generic
- ask happy customers to leave a review
* Write proposals and quotes
- write a project proposal with scope, timeline and pricing
- respond to a request for proposal from [a city government|a hospital]
- draft a quote and statement of work for a [website redesign|consulting engagement]

# Job search and resumes
@ for a software engineering role; for a marketing position; for a nursing job; for an entry-level role
@ after a career break; for a job in finance
* Write resume bullet points
- rewrite resume bullet points to show [measurable achievements|impact with numbers]
- tailor a resume to a specific job description
- fit [ten years of experience|a career change] onto a one-page resume
* Write cover letters
- write a cover letter that explains [a career change|an employment gap|a relocation]
- open a cover letter with a strong first sentence
- connect their experience to the company's mission in a cover letter
* Prepare for job interviews
- practice answers to [behavioral interview questions|tell me about yourself]
- prepare STAR stories for an interview about [leadership|conflict|failure]
- write questions to ask the interviewer at the end
* Optimize LinkedIn profiles
- write a LinkedIn headline and About section
- ask a former manager for a LinkedIn recommendation
- grow their network by messaging [alumni|recruiters] on LinkedIn
* Negotiate salary and job offers
- negotiate a higher salary after receiving a job offer
- compare two job offers with different [benefits|equity|commutes]
- ask for a raise backed by market salary data

# Small business finance and accounting
@ for a freelance designer; for a small bakery; for a sole proprietorship; for an online shop
@ for a cleaning business; in the United States
* Create invoices and payment terms
- create an invoice template with [payment terms|late fees|tax lines]
- chase a client who paid an invoice [60 days late|only partially]
- set up recurring invoices for retainer clients
* Understand business taxes and deductions
- understand which expenses are tax deductible for [a home office|a business vehicle|equipment]
- estimate quarterly tax payments as [a freelancer|a small business owner]
- understand the rules for [VAT registration|sales tax collection]
* Do bookkeeping and cash flow forecasting
- categorize transactions and reconcile accounts in [QuickBooks|Xero|a spreadsheet]
- build a 12-month cash flow forecast
- read a profit and loss statement and a balance sheet
* Apply for business loans and funding
- apply for a small business loan and prepare the documents
- compare [SBA loans|lines of credit|crowdfunding] for funding growth
- write a grant application for a [community project|small business grant]
* Manage payroll and contractor payments
- decide whether a worker is an employee or an independent contractor
- set up payroll for their first [two employees|part-time staff]
- understand [1099 forms|payroll taxes] for contractors

# Human resources and management
@ for a team of [five|twelve|twenty] people; at a growing startup; in a retail store; for a remote team
@ at a nonprofit; in a manufacturing company
* Write performance reviews
- write a performance review for an employee who [exceeds expectations|struggles with deadlines]
- give constructive feedback in a self-assessment
- set development goals during an annual review
* Write job descriptions and hiring plans
- write a job description for [a customer success manager|a junior developer|a warehouse supervisor]
- design structured interview questions and a scoring rubric for candidates
- write a rejection email to candidates who were not selected
* Onboard new employees
- create a 30-60-90 day onboarding plan for a new hire
- build an onboarding checklist for [the first week|remote hires]
- write an employee handbook section on [time off|the code of conduct]
* Handle difficult conversations with employees
- prepare for a conversation about [repeated lateness|poor performance|a complaint from a coworker]
- put an underperforming employee on an improvement plan
- let an employee go respectfully
* Run effective meetings and teams
- make weekly team meetings shorter and more useful
- plan the agenda for a [retrospective|brainstorming workshop|team offsite]
- improve morale and recognition on a [burned out|hybrid] team
"""
