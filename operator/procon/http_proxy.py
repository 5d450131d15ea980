"""The proxy for a URL, chosen once from the environment for aiohttp clients.

aiohttp's ``trust_env`` looks the proxy (and ~/.netrc) up again on every
request, in a worker thread; procon's aiohttp clients (the Kubernetes API's, a
processor driver's) talk to one fixed address each, so the choice is made once, when
the client is built, with the rules aiohttp itself would apply.
"""

from __future__ import annotations


def proxy_from_environment(url: str) -> str | None:
    """The proxy aiohttp would choose for ``url`` from HTTPS_PROXY/HTTP_PROXY/NO_PROXY (and their
    lower-case forms), or None. Credentials aiohttp would send to it (from the proxy's URL, or
    ~/.netrc for the proxy's host) stay in the URL: aiohttp sends a proxy URL's user and password
    as Proxy-Authorization, over plain HTTP and in a CONNECT alike."""
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        proxy, auth = get_env_proxy_for_url(URL(url))
    except LookupError:  # no proxy for this scheme, or NO_PROXY exempts the host
        return None
    if auth is not None:
        proxy = proxy.with_user(auth.login).with_password(auth.password)
    return str(proxy)
