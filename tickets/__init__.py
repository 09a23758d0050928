"""The case a call becomes (CİMER-style): numbering, status workflow, audit trail."""
