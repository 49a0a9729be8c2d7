"""Cue tables for the task classifier: which words point at which task type, and which
words raise flags (complexity, pattern, priority, vitality, code).

Words are lower-case base forms. ``_classify_index`` expands them into inflections
(``fix`` -> ``fixes``, ``fixed``, ``fixing``; ``story`` -> ``stories``), so list a word once.
A leading ``=`` marks a word to keep exactly as written (``=new`` must not become ``news``).
Bigrams are two space-separated tokens kept as written, except a word ending in ``*``,
which is inflected (``unit test*`` also matches "unit tests").

Weights are in "cue points". The leading verb of a request counts 1.5 times
(``_classify_scan.LEAD_BONUS``), so a domain noun that should beat any leading verb ("Add
tests", "Fix the docs") needs more than 1.5 times the verb's weight: keep such nouns at
2.5-3 and generic verbs at 1-1.5. Ties go to the more specific type.
"""

from __future__ import annotations

from lanes.kernel.taxonomy import TaskType

T = TaskType

# Flag bits. Plain ints so the hot loop ORs integers, not enum members.
CODE = 1 << 0
CRITICAL = 1 << 1
COMPLEX = 1 << 2
SIMPLE = 1 << 3
ITERATIVE = 1 << 4
MULTISTEP = 1 << 5
URGENT = 1 << 6
HIGH = 1 << 7
LOW = 1 << 8
LOWEST = 1 << 9
THINK = 1 << 10
REVIEW = 1 << 11
SECURITY = 1 << 12
ARCH = 1 << 13
PERF = 1 << 14
WHY = 1 << 15
NOT_URGENT = 1 << 16
MONEY = 1 << 17
DATA_LOSS = 1 << 18
MIGRATION = 1 << 19
CORRECTNESS = 1 << 20
PERF_CRITICAL = 1 << 21

WordTable = dict[TaskType, dict[float, str]]

WORD_CUES: WordTable = {
    T.CODE_GENERATION: {
        2.0: "implementation scaffold",
        1.5: "implement introduce support allow enable expose feature",
        1.2: "add create generate",
        1.0: "build write provide accept endpoint configurable customizable integrate show display",
        0.5: "=new register option function class script cli plugin component",
    },
    T.DEBUGGING: {
        3.0: "debug bug hotfix segfault traceback diagnose",
        2.5: "crash regression incorrect incorrectly wrong broken",
        2.0: "exception leak deadlock troubleshoot outage",
        1.5: "fix error fail failure handle prevent correctly unexpected unexpectedly hang "
        "intermittent investigate overflow",
        1.0: "should ensure correct avoid missing issue invalid null undefined flicker glitch "
        "preserve restore respect ignore exclude retain properly",
        0.5: "=none nan workaround edge",
    },
    T.DOCUMENTATION: {
        3.0: "docs documentation readme docstring jsdoc changelog",
        2.5: "doc document typo grammar =link =links comment guide",
        2.0: "tutorial clarify wording spelling faq example note",
        1.5: "explanation instructions contributing troubleshooting markdown section chapter",
        1.0: "describe announcement wiki manual",
        0.5: "explain update",
    },
    T.TESTING: {
        3.0: "test unittest pytest jest vitest e2e snapshot coverage",
        2.5: "spec mock assertion fixture flakiness",
        2.0: "flaky",
        1.5: "assert stub tdd cover",
    },
    T.REFACTORING: {
        3.0: "refactor restructure reorganize optimize optimise optimization perf",
        2.5: "simplify dedupe deduplicate modularize readability maintainability",
        2.0: "performance faster efficient efficiency unnecessary redundant memoize cleanup",
        1.5: "extract rename move unused simpler speed lazy lazily reuse decouple consolidate "
        "overhead parallelize migrate port modernize",
        1.0: "remove replace cache deprecated legacy split merge inline hoist reduce "
        "improve better use fast parallel allocation necessary avoid skip refine upgrade",
        0.5: "update",
    },
    T.CODE_REVIEW: {
        3.0: "review audit critique",
        2.5: "feedback",
        1.5: "smell pr vulnerability vulnerabilities secure insecure vulnerable",
        1.0: "diff lint injection xss csrf",
    },
    T.ARCHITECTURE: {
        3.0: "architecture architectural microservice microservices",
        2.5: "architect scalability scalable topology monolith",
        2.0: "design infrastructure sharding",
        1.5: "distributed replication tenant blueprint",
        1.0: "subsystem layer schema diagram",
        0.5: "system component queue",
    },
    T.PLANNING: {
        3.0: "roadmap plan milestone",
        2.0: "timeline sprint deliverable okr checklist",
        1.5: "breakdown schedule estimate estimation phase phased prioritize backlog strategy "
        "rollout outline",
        0.5: "task",
    },
    T.ANALYSIS: {
        3.0: "analyze analyse summarize summarise summary",
        2.5: "compare comparison evaluate assess assessment",
        2.0: "analysis insight trend interpret correlation takeaway sentiment prove proof "
        "theorem derive derivation",
        1.5: "metric statistics dataset article forecast versus",
        1.0: "data report benchmark explain survey investigate",
    },
    T.CREATIVE: {
        4.0: "poem haiku limerick sonnet",
        3.5: "slogan tagline lyrics",
        3.0: "story fiction song joke rhyme screenplay catchy",
        2.0: "essay fantasy metaphor creative imaginative",
        1.0: "novel",
        1.5: "brainstorm tweet speech birthday",
    },
    T.FACTUAL: {
        2.5: "define definition",
        1.5: "capital population fact history explain",
    },
    T.COORDINATION: {
        3.0: "coordinate coordination delegate orchestrate orchestration",
        2.5: "assign handoff standup workstream",
        2.0: "dispatch collaborate stakeholder",
        1.5: "distribute meeting subtask team",
        1.0: "align owner agent",
    },
    T.SIMPLE_TASK: {
        2.5: "translate rephrase paraphrase capitalize uppercase lowercase proofread",
        2.0: "reformat bump",
        1.5: "convert sort shorten reword format hello",
        1.0: "count list",
    },
}

BIGRAM_CUES: WordTable = {
    T.CODE_GENERATION: {1.5: "write* code|new feature*|add* support"},
    T.DEBUGGING: {
        3.0: "stack trace*|root cause*|not working|doesn't work|race condition*",
        2.0: "what's wrong|is wrong|went wrong|is down|prod down|production down",
    },
    T.DOCUMENTATION: {3.0: "api reference|code example*|usage example*|release note*"},
    T.TESTING: {3.0: "test case*|unit test*|integration test*|test suite*|test coverage"},
    T.REFACTORING: {
        2.5: "clean* up|speed* up|dead code|tidy* up|without change*|without breaking",
        2.0: "non blocking",
        1.5: "instead of|memory usage|bundle size",
    },
    T.CODE_REVIEW: {
        3.0: "code review*|pull request*|look* over",
        2.5: "check this",
        1.5: "best practices",
    },
    T.ARCHITECTURE: {
        3.0: "system design*|event driven|high availability|fault tolerant|fault tolerance",
        2.5: "service boundaries|bounded context*",
        2.0: "data model*|load balancer*|message queue*|event bus|trade offs",
    },
    T.PLANNING: {3.0: "user story*", 2.5: "break* down|action items|project plan*|next steps"},
    T.ANALYSIS: {3.0: "b test*", 2.5: "pros and|key points|tl dr"},
    T.CREATIVE: {3.0: "cover letter*", 2.0: "short story*|blog post*|ad copy|marketing copy"},
    T.FACTUAL: {
        2.5: "who is|who was|who invented|who wrote|stand for|stands for",
        2.0: "what is|what are|what was|when did|when was|where is|how many|how much|tell me",
        1.5: "meaning of|difference* between",
    },
    T.COORDINATION: {2.5: "hand* off|follow* up|status update*|sync up"},
    T.SIMPLE_TASK: {1.5: "one liner"},
}

FLAG_WORDS: dict[int, str] = {
    CODE: "function method class api bug compile compiler code codebase script endpoint "
    "variable regex sql repo repository refactor unittest pytest exception traceback "
    "commit python javascript typescript golang rust java kotlin swift html css json yaml "
    "docker kubernetes module library cli sdk async runtime parser debug segfault null "
    "undefined stacktrace webpack npm pip import linter struct enum decorator",
    CRITICAL | SECURITY: "security secure insecure vulnerability vulnerabilities vulnerable cve "
    "exploit injection xss csrf ssrf rce auth authentication authorization oauth =oauth2 jwt "
    "sso saml mfa =2fa login crypto "
    "cryptography cryptographic encryption encrypt decrypt password credential secret "
    "breach malware pii gdpr hipaa pci sanitize sanitization tls ssl certificate threat "
    "pentest permission privilege",
    CRITICAL: "outage incident sev0 sev1",
    COMPLEX: "migrate migration distributed architecture redesign rewrite concurrency "
    "concurrent scalability microservices monorepo overhaul comprehensive thorough tenant "
    "sharding replication complicated",
    SIMPLE: "typo rename bump trivial quick quickly tiny minor whitespace spelling",
    ITERATIVE: "iterate iteration iteratively until refine repeat repeatedly retry converge tweak",
    MULTISTEP: "then afterwards subsequently finally",
    URGENT: "urgent urgently asap immediately emergency outage hotfix sev0 sev1 p0",
    HIGH: "important blocker critical soon today",
    LOWEST: "whenever someday eventually",
    THINK: "prove proof derive derivation rigorous rigorously theorem",
    REVIEW: "review audit inspect critique pentest",
    ARCH: "architecture architectural design",
    PERF: "performance perf latency throughput bottleneck profiling memory",
    WHY: "why",
    MONEY: "billing invoice payment payout refund chargeback ledger =money revenue checkout "
    "bank banking wallet payroll =tax =taxes =pricing =price =prices",
    DATA_LOSS: "corruption corrupt =backup =backups rollback =wipe",
    MIGRATION: "migration",
    CORRECTNESS: "correctness race concurrency consistency integrity idempotent idempotency "
    "atomic atomicity transactional",
}

FLAG_BIGRAMS: dict[int, str] = {
    CRITICAL | URGENT: "is down|prod down|production down|production outage*",
    CRITICAL: "data loss|data corruption|private key*|access control*|mission critical",
    CRITICAL | SECURITY: "sql injection*|auth bypass|api key*|access token*",
    COMPLEX: "entire codebase|whole codebase|across services|across the|whole system|"
    "end to|large scale|zero downtime|from scratch|deep dive|race condition*",
    SIMPLE: "one liner",
    ITERATIVE: "keep trying|keep going|again and|each round",
    MULTISTEP: "after that|step by",
    URGENT: "right now|right away",
    HIGH: "high priority|top priority",
    LOW: "low priority|not urgent|nice to|have time|spare time",
    LOWEST: "no rush",
    NOT_URGENT: "not urgent|no rush",
    THINK: "think step|think carefully|think hard|reason* through|step by|deep dive",
    REVIEW: "look* over|check this",
    PERF: "speed* up|memory usage",
    DATA_LOSS: "data loss|lost data|losing data|drop table|delete* production|deleted data",
    MIGRATION: "database migration*|schema migration*|data migration*|"
    "migrate* data|migrate* production",
    MONEY: "losing money|lose money|double charge*|credit card*",
    PERF_CRITICAL: "performance critical|latency critical|latency sensitive|hot path*|"
    "critical path*|performance regression*",
}

NEUTRAL_BIGRAMS = "for example|for instance|such as|error handling"
"""Phrases that score nothing but hide their words ("for example" is not about examples)."""

LEADING_FILLER = frozenset(
    {
        *("please", "pls", "kindly", "can", "could", "would", "will", "you", "i", "i'd"),
        *("we", "let's", "lets", "need", "want", "to", "like", "help", "me", "us"),
        *("hey", "hi", "now", "also", "just", "go", "ahead", "re"),
    }
)
"""Tokens skipped before the leading verb (``"Could you please add ..."`` leads with add)."""

QUESTION_WORDS = frozenset({"what", "who", "whom", "whose", "when", "where", "which", "why", "how"})
