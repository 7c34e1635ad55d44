"""The pure core: models, errors, the protocol's rules, validation, redaction, options,
and the rules of rate limits and resumed runs. No I/O: nothing here sends a request or
imports aiohttp, so all of it is tested with plain values.
"""
