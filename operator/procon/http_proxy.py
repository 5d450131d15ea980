"""The proxy for a URL, chosen once from the environment for aiohttp clients.

aiohttp's ``trust_env`` looks the proxy (and ~/.netrc) up again on every
request, in a worker thread; procon's aiohttp clients (the Kubernetes API's, a
processor driver's) talk to one fixed address each, so the choice is made once,
when the client is built.

The rules are those of curl and httpx (which procon's processor clients used
before), not aiohttp's narrower ones: aiohttp skips an ``https://`` proxy,
reads no ``ALL_PROXY``, and takes a value without a scheme for a URL without a
host, which would fail every request.
"""

from __future__ import annotations

from urllib.request import getproxies, proxy_bypass

from aiohttp.helpers import basicauth_from_netrc, netrc_from_env
from yarl import URL


def proxy_from_environment(url: str) -> str | None:
    """The proxy for ``url``, or None: ``HTTPS_PROXY`` or ``HTTP_PROXY`` by its scheme, else
    ``ALL_PROXY``, unless ``NO_PROXY`` exempts its host (a lower-case name wins over its
    upper-case one). A value without a scheme is an HTTP proxy's address (``proxy.internal:3128``);
    an ``https://`` proxy is reached over TLS.

    Credentials for the proxy come from its URL, or else from ~/.netrc for its host, and stay in
    the URL: aiohttp sends a proxy URL's user and password as Proxy-Authorization, over plain
    HTTP and in a CONNECT alike.
    """
    target = URL(url)
    if target.host is not None and proxy_bypass(target.host):
        return None
    proxies = getproxies()
    value = proxies.get(target.scheme) or proxies.get("all")
    if not value:
        return None
    proxy = URL(value if "://" in value else f"http://{value}")
    if proxy.user is None and proxy.host is not None and (netrc := netrc_from_env()) is not None:
        try:
            auth = basicauth_from_netrc(netrc, proxy.host)
        except LookupError:
            return str(proxy)
        proxy = proxy.with_user(auth.login).with_password(auth.password)
    return str(proxy)
