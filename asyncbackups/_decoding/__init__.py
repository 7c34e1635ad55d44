"""Answers into models: the general decoder (cattrs, with hand-written hooks where
measured) and the msgspec fast path, held to the same results by a differential test.
"""
