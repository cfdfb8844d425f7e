"""The escalation table: prompts, and the tier and backend each must get through the gateway.

These are the expectations of the boundaries below (LiteLLM 1.106.12's rule-based complexity
router, `classifier_type: heuristic`), not a judgement of the prompts: with LiteLLM's default
boundaries a multi-step code task scores 0.30 and stays MEDIUM; here medium_complex is 0.25, so
it goes to the frontier. SIMPLE and MEDIUM are served by the local model, COMPLEX and REASONING
by the frontier remote. One keyword rule shows that keyword lists pass through to LiteLLM.

Used by tests/integration/test_escalation_podman.py and bench/bench_escalation.py.
"""

from __future__ import annotations

BOUNDARIES = {"simple_medium": 0.1, "medium_complex": 0.25, "complex_reasoning": 0.6}
RULE_KEYWORD = "escalate please"

# The [services.gateway.escalation] table of the suite (local `tiny`, frontier `big-model` on
# the counting stand-in, overflow `overflow-model` on the same stand-in).
ESCALATION_TOML = f"""
[services.gateway.escalation]
local = "tiny"
frontier = "big-model"
overflow = "overflow-model"
tier_boundaries = {{ simple_medium = {BOUNDARIES["simple_medium"]}, \
medium_complex = {BOUNDARIES["medium_complex"]}, \
complex_reasoning = {BOUNDARIES["complex_reasoning"]} }}
keyword_tier_rules = [{{ keywords = ["{RULE_KEYWORD}"], tier = "COMPLEX" }}]
"""

LOCAL_TIERS = ("SIMPLE", "MEDIUM")

# (prompt, tier). Local prompts stay short: the suite's llama-server has a 256-token context.
PROMPTS: list[tuple[str, str]] = [
    # greetings
    ("hi", "SIMPLE"),
    ("hello there", "SIMPLE"),
    ("thanks!", "SIMPLE"),
    ("good morning", "SIMPLE"),
    # one-line questions
    ("What is the capital of France?", "SIMPLE"),
    ("Who is the author of Hamlet?", "SIMPLE"),
    ("How many legs does a spider have?", "SIMPLE"),
    ("Define photosynthesis in one sentence.", "SIMPLE"),
    ('Translate "good night" into Spanish.', "SIMPLE"),
    ("Is concurrency the same as parallel threading?", "SIMPLE"),
    ("Why does my GPU run out of memory when training a neural network?", "MEDIUM"),
    ("What are the main differences between TCP and UDP protocols for websocket performance?",
     "MEDIUM"),
    ("Write a SQL query that returns the ten newest users.", "MEDIUM"),
    ("Think step by step: if a train leaves at 3pm going 60 mph, when does it arrive 180 miles "
     "away?", "MEDIUM"),
    # multi-step code tasks
    ("Implement a Python function that parses a CSV file, then write unit tests for it, and "
     "refactor the database query layer.", "COMPLEX"),
    ("Refactor this JavaScript class to use async/await and add error handling for the API "
     "endpoint.", "COMPLEX"),
    ("Write a Rust function to implement a thread-safe LRU cache, then benchmark it.", "COMPLEX"),
    ("Debug this SQL query: the schema has a users table and the join returns duplicates.",
     "COMPLEX"),
    ("Design a distributed, scalable microservice architecture with authentication, then "
     "implement the API.", "COMPLEX"),
    (f"Please {RULE_KEYWORD}: tell me a joke.", "COMPLEX"),
    # reasoning prompts
    ("Analyze this argument step by step and explain your reasoning about whether the "
     "conclusion follows logically.", "REASONING"),
    ("Compare and contrast the pros and cons of nuclear and solar power; think carefully and "
     "weigh the options.", "REASONING"),
    ("Let's think through this proof step by step and deduce whether the claim holds.",
     "REASONING"),
    ("Evaluate the pros and cons of microservices versus a monolith; break down the trade-offs "
     "step by step.", "REASONING"),
]


def backend_for(tier: str) -> str:
    return "local" if tier in LOCAL_TIERS else "remote"
