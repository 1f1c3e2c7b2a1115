"""Topic data: software development and data analysis (format: see `taxonomy.py`)."""

DATA = r"""
= Software development
~ and shared the error message and a code snippet; and asked for working code with comments
~ and asked why the original approach failed; and wanted the fix explained line by line
~ and asked for best practices to avoid the issue in future

# Python programming
@ in a Python script; in a Django project; in a Jupyter notebook; in a small automation tool
@ in a Python 3.11 codebase; for a university assignment
* Fix Python KeyError and TypeError exceptions
- debug a KeyError raised when parsing [nested JSON|a settings dictionary|an API response dict]
- fix a TypeError saying a NoneType object is not subscriptable
- understand a traceback that ends in [a KeyError|a TypeError|an AttributeError] on a dictionary lookup
- handle missing dictionary keys safely with [dict.get defaults|try and except blocks|defaultdict]
* Resolve Python import and dependency errors
- fix a ModuleNotFoundError after installing a package with pip
- resolve [conflicting package versions|a broken requirements file|pip dependency conflicts] in a virtual environment
- set up [a venv|a conda environment|Poetry] so that imports resolve correctly
- understand why a circular import breaks [module loading|the package]
* Write pytest unit tests and fixtures
- write pytest unit tests for [a parsing function|a date utility|a class with side effects]
- create pytest fixtures and parametrize test cases
- mock [an HTTP call|the filesystem|a database connection] with unittest.mock in a test
- raise test coverage and fix a flaky assertion
* Debug asyncio and concurrency in Python
- fix an asyncio event loop that [hangs|raises RuntimeError|never finishes] when awaiting tasks
- run blocking requests concurrently with [asyncio.gather|a thread pool|aiohttp]
- understand the difference between threads, processes and coroutines
- avoid a race condition when [multiple threads|several workers] update shared state
* Refactor Python code with classes and type hints
- refactor a long procedural script into [classes|dataclasses|smaller functions]
- add type hints and make mypy pass on [a module|a legacy codebase]
- apply [object-oriented design|SOLID principles|the strategy pattern] to duplicated logic
- split a [300-line|huge|messy] function and rename variables for readability

# Web frontend development
@ in a React app; for a portfolio website; in a Next.js project; for an e-commerce storefront
@ for a dashboard used on mobile browsers; in a side project
* Manage React state and hooks
- fix a useEffect hook that [runs in an infinite loop|fires twice|misses dependency updates]
- share state between components with [Context|Redux|Zustand] instead of prop drilling
- understand why a React component re-renders [too often|after every keystroke]
- convert a class component into a function component with hooks
* Build CSS layouts with flexbox and grid
- center a div [vertically and horizontally|inside a flex container] with CSS
- build a responsive [card grid|navigation bar|two-column layout] with CSS grid and flexbox
- fix elements overflowing their container on small screens
- write CSS media queries so that the layout stacks on narrow viewports
* Fix TypeScript type errors
- fix a TypeScript error saying a property does not exist on type [object|never|unknown]
- write generic TypeScript types for [an API client|a reusable hook|a form component]
- type [props|event handlers|JSON responses] correctly in TypeScript
- migrate JavaScript files to TypeScript with strict mode enabled
* Handle web forms and validation in JavaScript
- validate [email and password fields|a multi-step signup form|a checkout form] in JavaScript
- show inline error messages when a form input is invalid
- submit form data with fetch and [handle server errors|disable the button while sending]
- build a controlled form with [React Hook Form|Formik] and a schema validator
* Set up Next.js routing and server rendering
- set up dynamic routes and [nested layouts|route parameters] in the Next.js app router
- fix a hydration mismatch error between server and client rendering
- fetch data with [server components|getServerSideProps|static generation] in Next.js
- configure [middleware redirects|image optimization|environment variables] in Next.js

# SQL and databases
@ in PostgreSQL; in MySQL; for a sales database; for an inventory system; in SQLite
@ on a table with millions of rows
* Write SQL joins and aggregations
- write a SQL query that joins [orders and customers|employees and departments|two tables] and groups totals
- calculate [monthly revenue|counts per category|running totals] with GROUP BY and window functions
- fix a query returning duplicate rows after a LEFT JOIN
- find the top [three products per region|customers by spend] using ROW_NUMBER
* Optimize slow SQL queries and indexes
- speed up a slow query by adding the right [composite index|covering index|indexes]
- read an EXPLAIN ANALYZE plan and find [the sequential scan|the bottleneck]
- rewrite a correlated subquery that [times out|takes minutes]
- reduce lock contention and deadlocks during [bulk updates|heavy writes]
* Design relational database schemas
- design a normalized schema for [a library system|a booking app|a school roster|an online shop]
- choose primary keys, foreign keys and constraints for [users and orders|a many-to-many relationship]
- draw an entity relationship diagram for [a clinic|a gym membership system]
- decide between [normalization and denormalization|one wide table and several narrow tables]
* Run database migrations and backups
- write a migration that adds a [non-null column|new index|foreign key] without downtime
- fix a failed [Alembic|Django|Flyway] migration on production
- back up and restore a PostgreSQL database with pg_dump
- move data from MySQL to PostgreSQL [safely|with minimal downtime]
* Query MongoDB and NoSQL stores
- write a MongoDB aggregation pipeline with [$lookup|$group|$unwind] stages
- model documents and embedded arrays in MongoDB for [a chat app|a blog|product reviews]
- query DynamoDB using partition keys and secondary indexes
- decide whether [MongoDB|Cassandra|a document store] fits better than a relational database

# DevOps and cloud infrastructure
@ on AWS; on Google Cloud; on Azure; for a staging environment; for a small team
@ on an Ubuntu server
* Write Dockerfiles and docker-compose setups
- write a Dockerfile for a [Node.js|Python|Go] service with a small image size
- fix a docker-compose setup where containers cannot reach each other
- debug a Docker container that [exits immediately|cannot find its files|runs out of memory]
- use multi-stage builds and volumes in Docker
* Deploy applications to Kubernetes
- write Kubernetes deployment and service manifests for [a web app|an API|a worker]
- debug pods stuck in [CrashLoopBackOff|Pending|ImagePullBackOff]
- set up [a Helm chart|an ingress controller|horizontal pod autoscaling] in Kubernetes
- manage secrets and config maps in a Kubernetes cluster
* Configure CI/CD pipelines
- write a GitHub Actions workflow that [runs tests|builds and pushes an image|deploys on merge]
- fix a failing CI job caused by [caching|a missing secret|a flaky build step]
- set up a GitLab CI pipeline with [test and deploy stages|manual approval]
- speed up a slow build pipeline with [caching|parallel jobs]
* Manage AWS permissions and serverless functions
- write an IAM policy that grants [read access to one S3 bucket|least privilege]
- deploy a Lambda function triggered by [API Gateway|S3 uploads|a schedule]
- fix an AccessDenied error when calling [S3|DynamoDB] from a Lambda
- estimate and reduce a surprising [AWS bill|serverless cost]
* Set up Nginx, DNS and SSL certificates
- configure Nginx as a reverse proxy for [a Node app|a Flask app|several services]
- install a Let's Encrypt SSL certificate and force HTTPS
- fix a 502 Bad Gateway error from [Nginx|the load balancer]
- point a custom domain's DNS records at [a server|a hosting provider]

# Backend APIs and services
@ in FastAPI; in Flask; in Express; in Spring Boot; for a mobile app backend; for a SaaS product
* Build REST API endpoints
- design REST endpoints for [a todo app|a booking service|user profiles] with proper status codes
- add pagination and filtering to a REST endpoint that lists [products|orders]
- return consistent JSON error responses from [every route|the API]
- version a public REST API without breaking clients
* Implement authentication with JWT and OAuth
- implement login with JWT access and refresh tokens
- add [Google|GitHub] OAuth sign-in to an application
- hash and store passwords securely with [bcrypt|argon2]
- fix a CORS error that blocks the frontend from sending [cookies|auth headers]
* Debug Node.js and Express servers
- fix an unhandled promise rejection that crashes a Node.js server
- write Express middleware for [logging|error handling|request validation]
- resolve a [memory leak|high CPU usage] in a long-running Node.js process
- read environment variables and config files in Node.js
* Add caching and background job queues
- cache expensive database results in Redis with [an expiry|invalidation on update]
- move slow email sending into a background queue with [Celery|BullMQ|RQ]
- implement rate limiting per [user|IP address] with Redis
- retry failed background jobs with exponential backoff
* Design GraphQL schemas and resolvers
- design a GraphQL schema with [queries and mutations|nested types] for [a blog|a store]
- fix the N+1 query problem in GraphQL resolvers with DataLoader
- add subscriptions for real-time updates to a GraphQL server
- decide between GraphQL and REST for [a new project|a mobile client]

# Git, shell and developer tools
@ on macOS; on Windows; on Linux; in a shared team repository; at work; on a remote server
* Resolve git merge conflicts and rebases
- resolve a git merge conflict after pulling from [main|a teammate's branch]
- undo [a bad commit|a force push|an accidental reset] in git without losing work
- squash commits and rebase a feature branch onto main
- set up a git branching strategy and [pull request|code review] workflow
* Write Bash scripts for automation
- write a Bash script that [renames files in bulk|backs up a folder nightly|parses log files]
- loop over files and handle spaces in filenames in a shell script
- fix a Bash script that fails with [permission denied|command not found|unexpected end of file]
- use [awk|sed|grep and cut] to extract columns from text output
* Write regular expressions
- write a regex that matches [email addresses|phone numbers|dates in several formats]
- extract [URLs|hashtags|prices] from text with a regular expression
- understand why a regex with [lookaheads|greedy quantifiers] matches too much
- validate [password strength|postal codes] with a regular expression
* Fix Linux permissions and cron jobs
- schedule a cron job that runs a script [every night|every five minutes]
- fix [file permissions|ownership] with chmod and chown
- set up [a systemd service|SSH keys|a firewall rule] on a Linux server
- find what is filling up the disk on a Linux machine
* Configure VS Code and development environments
- configure VS Code [extensions|the debugger|formatting on save] for a project
- set up [a linter and formatter|ESLint and Prettier|pre-commit hooks] in the editor
- get [WSL|a dev container|remote SSH] working with VS Code
- choose keyboard shortcuts and editor settings to speed up coding

= Data analysis
~ and asked for the exact formula or code; and wanted to understand the result, not just get it
~ and asked how to automate it for next month; and shared a sample of their data
~ and asked how to present the findings to their boss

# Excel and spreadsheets
@ in Excel; in Google Sheets; for a sales report; for a household budget sheet; for an inventory list
@ across several worksheets
* Write VLOOKUP and XLOOKUP formulas
- write [a VLOOKUP|an XLOOKUP|an INDEX MATCH] formula that pulls prices from another sheet
- fix a lookup formula returning #N/A for values that exist
- look up a value that matches two criteria with a lookup formula
* Build pivot tables and summaries
- build a pivot table summarizing [sales by region and month|expenses by category]
- group dates by quarter in a pivot table
- show percentages of the grand total in a pivot table
* Use conditional formatting and data validation
- highlight [overdue dates|duplicates|values above target] with conditional formatting
- create a dropdown list with data validation
- color entire rows based on a status column
* Write nested IF and date formulas
- write a nested IF formula that assigns [grades|commission tiers|shipping rates]
- calculate [working days between two dates|age from a birth date|days until a deadline]
- combine SUMIFS and COUNTIFS with multiple conditions
* Automate spreadsheets with macros and scripts
- write a VBA macro that [copies rows to another sheet|sends emails|formats a report]
- write a Google Apps Script that [emails a weekly summary|imports CSV data]
- record a macro and edit it to loop through rows

# Data wrangling with pandas
@ in pandas; in a Jupyter notebook; on a CSV with [50,000|two million] rows; for a survey dataset
@ for sales data; with Python
* Clean messy data and missing values
- fill or drop missing values in a pandas DataFrame
- clean inconsistent [date formats|country names|phone numbers] in a column
- remove duplicate rows and fix column data types
* Merge and reshape DataFrames
- merge two DataFrames on a key and fix [duplicated rows|missing matches]
- pivot a long table into wide format with [pivot_table|unstack]
- melt wide columns into rows for plotting
* Group and aggregate with groupby
- compute [the average order value per customer|monthly totals|counts per group] with groupby
- apply a custom aggregation function per group
- rank items within each group and keep the top n
* Parse dates and time series
- resample daily data to [weekly|monthly] averages
- compute a rolling average and year-over-year change
- convert timestamps between time zones
* Speed up slow pandas code
- replace a slow loop with vectorized pandas operations
- reduce memory use when reading a large CSV [in chunks|with categorical types]
- decide whether to switch to [Polars|DuckDB] for a large dataset

# Statistics and hypothesis testing
@ for a psychology study; for an experiment at work; for a thesis; for a clinical dataset; in R
@ in SPSS
* Choose and run t-tests and ANOVA
- choose between a t-test, ANOVA and a nonparametric test
- run a [paired|two-sample] t-test and interpret the p-value
- interpret post hoc comparisons after a one-way ANOVA
* Interpret regression models
- interpret coefficients in a [linear|logistic|multiple] regression
- check regression assumptions such as [normality of residuals|multicollinearity]
- explain what R-squared and adjusted R-squared mean
* Calculate sample sizes and statistical power
- calculate the sample size needed to detect [a small effect|a 2 percent lift]
- run a power analysis before [an experiment|a survey]
- understand [type I and type II errors|confidence levels]
* Analyze A/B test results
- decide whether an A/B test result on [conversion rate|signup rate] is significant
- avoid peeking at A/B test results too early
- compute a confidence interval for the difference in conversion
* Analyze survey responses and Likert scales
- analyze [Likert scale|multiple choice] survey responses
- run a chi-square test on survey crosstabs
- measure questionnaire reliability with Cronbach's alpha

# Data visualization
@ with matplotlib; with seaborn; with Plotly; in Excel; for a presentation; for a report to stakeholders
* Create charts with matplotlib and seaborn
- create a [bar chart|line chart|scatter plot] with labeled axes and a legend
- fix overlapping tick labels and figure sizing
- plot several subplots sharing one axis
* Choose the right chart type
- choose the best chart to show [parts of a whole|change over time|a distribution]
- decide whether a pie chart or a bar chart works better
- avoid misleading visuals such as truncated axes
* Plot maps and geographic data
- draw a choropleth map of [sales by state|population by country]
- plot latitude and longitude points on an interactive map
- join geographic boundaries with tabular data
* Build interactive charts
- make interactive charts with [hover tooltips|dropdown filters] in Plotly
- build a small Streamlit app to explore a dataset
- export an interactive chart to HTML
* Style charts for publications
- apply a consistent color palette and font to charts
- make charts readable for colorblind viewers
- format a figure to meet journal requirements

# Machine learning models
@ with scikit-learn; with PyTorch; with XGBoost; on tabular data; on a small dataset
@ for a Kaggle competition
* Train classification models
- train a classifier to predict [customer churn|loan defaults|spam messages]
- handle imbalanced classes with [class weights|oversampling]
- pick a baseline model and a train test split
* Tune hyperparameters and evaluate models
- tune hyperparameters with [grid search|random search|Optuna]
- interpret [precision and recall|a confusion matrix|ROC AUC]
- fix a model that overfits the training data
* Engineer features
- create features from [dates|text columns|categorical variables]
- encode categories with [one-hot encoding|target encoding]
- select the most important features
* Forecast time series
- forecast [monthly sales|electricity demand|website traffic] with [ARIMA|Prophet|gradient boosting]
- account for seasonality and holidays in a forecast
- evaluate forecasts with backtesting
* Fine-tune neural networks and language models
- fine-tune [a BERT model|a small language model] on their own text data
- fix a training loop whose loss [does not decrease|becomes NaN]
- run training on a GPU and fix CUDA out of memory errors

# Dashboards and business intelligence
@ in Power BI; in Tableau; in Looker Studio; for the sales team; for executives; refreshed every week
* Write DAX measures in Power BI
- write a DAX measure for [year-to-date sales|month-over-month growth|a running total]
- fix a DAX calculation that ignores a slicer filter
- understand CALCULATE and filter context in DAX
* Design KPI dashboards
- choose KPIs and a layout for a [sales|marketing|operations] dashboard
- design a one-page executive dashboard
- reduce clutter in a dashboard with too many charts
* Build Tableau calculated fields
- write a Tableau calculated field for [profit ratio|customer cohorts]
- use level of detail expressions in Tableau
- create a parameter to switch measures in Tableau
* Connect data sources and refresh data
- connect a dashboard to [a SQL database|Google Sheets|Salesforce]
- schedule automatic data refreshes and fix refresh failures
- model relationships between [fact and dimension tables|several data sources]
* Define metrics and tracking plans
- define [active users|retention|customer lifetime value] consistently across teams
- write a tracking plan for product analytics events
- calculate cohort retention from event data
"""
