"""A call across its attempts: the retry policy by safety, the reconcile of a create in
doubt, and pagination. It sees only the Transport protocol, never aiohttp.
"""
