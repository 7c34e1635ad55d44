"""Sending one attempt: the Transport protocol, its aiohttp implementation (the one
module that imports aiohttp) and the rate governor that says when an attempt may leave.
"""
