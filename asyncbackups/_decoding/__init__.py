"""Answers into models: the msgspec fast path for the usual answer, and the general
decoder (cattrs) as the reference and for the rest, held to the same results by a
differential test.
"""
