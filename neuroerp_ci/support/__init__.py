"""Helpers every layer may use and that know nothing of checks, gates or stages: printable text
and number formatting, the allowed-hosts rule, placeholders, secret redaction, subprocesses and
the state folder."""
