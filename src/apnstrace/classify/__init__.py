"""Apple-aware flow classification: rules as data (rules.toml) and a small vectorized engine.

    from apnstrace.classify import classify, explain
    flows = classify(flows, site=Site.from_mdm_hosts(["mdm.example.com:8443"]))
"""
from .classifier import INPUT_COLUMNS, OUTPUT_COLUMNS, classify, explain
from .rules import (AUTO, NAME, STRONGEST, Category, Evidence, Rule, RuleSet, Service, builtin_rules, load_rules,
                    site_rules)

__all__ = ["classify", "explain", "Category", "Evidence", "Service", "Rule", "RuleSet", "builtin_rules",
           "load_rules", "site_rules", "INPUT_COLUMNS", "OUTPUT_COLUMNS", "AUTO", "NAME", "STRONGEST"]
