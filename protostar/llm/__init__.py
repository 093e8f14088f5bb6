"""The vendor seam: small Protocols for embedders and chat models, implementations chosen by dotted path."""
