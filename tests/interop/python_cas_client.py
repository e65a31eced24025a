"""Drive one CAS scenario against a running CAS server with the python-cas library.

The script signs in at /login as a browser would (GET the form, POST it back with the
hidden login ticket, read the service ticket from the redirect), then validates the
ticket with python-cas. It prints what happened as `key=value` lines on stdout and
exits with 0 when the scenario behaved as the CAS protocol requires, 1 otherwise.
The Rust test in tests/tests/interop_python.rs checks both.

HTTPS trust: requests reads REQUESTS_CA_BUNDLE, which the caller points at the
development CA, so every python-cas call verifies the server certificate.
"""

import argparse
import html.parser
import http.server
import ssl
import sys
import threading
import urllib.parse

import cas
import requests


class FormParser(html.parser.HTMLParser):
    """Collect the action and the input fields of the first form on a page."""

    def __init__(self):
        super().__init__()
        self.action = None
        self.fields = {}
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if tag == "form" and self.action is None:
            self.action = attributes.get("action", "")
            self._in_form = True
        elif tag == "input" and self._in_form and attributes.get("name"):
            self.fields[attributes["name"]] = attributes.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


class Failure(Exception):
    """A step of the scenario did not behave as the protocol requires."""


def sign_in(cas_url, service, username, password):
    """Sign in at the CAS login form for `service` and return the service ticket."""
    browser = requests.Session()
    login_url = urllib.parse.urljoin(cas_url, "login") + "?" + urllib.parse.urlencode(
        {"service": service}
    )

    form_page = browser.get(login_url, allow_redirects=False)
    if form_page.status_code != 200:
        raise Failure(f"GET {login_url} returned {form_page.status_code}, expected the login form")
    form = FormParser()
    form.feed(form_page.text)
    if form.action is None or "lt" not in form.fields:
        raise Failure("the login page has no form with a login ticket (lt)")

    fields = dict(form.fields)
    fields.update({"username": username, "password": password})
    action = urllib.parse.urljoin(login_url, form.action)
    redirect = browser.post(action, data=fields, allow_redirects=False)
    if redirect.status_code not in (302, 303):
        raise Failure(f"POST {action} returned {redirect.status_code}, expected a redirect")

    location = redirect.headers.get("Location", "")
    if not location.startswith(service):
        raise Failure(f"the login redirected to {location!r}, not to the service {service!r}")
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    tickets = query.get("ticket", [])
    if len(tickets) != 1 or not tickets[0].startswith("ST-"):
        raise Failure(f"the redirect {location!r} has no single ST- ticket")
    print("login=ok")
    return tickets[0]


def print_validation(prefix, user, attributes):
    """Print the user and every attribute value, one line each, multi-valued ones repeated."""
    print(f"{prefix}user={user}")
    for name in sorted(attributes or {}):
        values = attributes[name]
        if not isinstance(values, list):
            values = [values]
        for value in values:
            print(f"{prefix}attribute {name}={value}")


def client(version, args, service=None, **extra):
    """Create a python-cas client for `service` (the scenario's service by default)."""
    return cas.CASClient(
        version=version,
        service_url=service or args.service,
        server_url=args.cas,
        **extra,
    )


def validate_once(version, args):
    ticket = sign_in(args.cas, args.service, args.username, args.password)
    user, attributes, _ = client(version, args).verify_ticket(ticket)
    print_validation("", user, attributes)
    if user is None:
        raise Failure(f"CASClient(version={version!r}) returned no user for a fresh ticket")


def reuse(args):
    """A service ticket validates once, so the second attempt must return no user."""
    ticket = sign_in(args.cas, args.service, args.username, args.password)
    validator = client(args.version, args)

    first, _, _ = validator.verify_ticket(ticket)
    print(f"first user={first}")
    second, _, _ = validator.verify_ticket(ticket)
    print(f"second user={second}")
    if first is None or second is not None:
        raise Failure("a service ticket must validate exactly once")


def wrong_service(args):
    """A ticket issued for one service must give no user when validated for another."""
    ticket = sign_in(args.cas, args.service, args.username, args.password)
    user, _, _ = client(args.version, args, service=args.other_service).verify_ticket(ticket)
    print(f"other service user={user}")
    if user is not None:
        raise Failure("a ticket validated for another service than its own")


class CallbackHandler(http.server.BaseHTTPRequestHandler):
    """Store the pgtIou and pgtId pairs that the CAS server sends to the proxy callback."""

    def do_GET(self):
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        iou = query.get("pgtIou", [None])[0]
        pgt = query.get("pgtId", [None])[0]
        if iou and pgt:
            self.server.tickets[iou] = pgt
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format, *args):
        """Keep the callback quiet, because its requests carry proxy-granting tickets."""


def start_callback_server(port, cert, key):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), CallbackHandler)
    server.tickets = {}
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class ProxyValidator(cas.CASClientV3):
    """python-cas 1.7 has no proxyValidate client, so this one reuses the CAS 3 client
    and its response parser with the proxyValidate URL of the requested version."""

    def __init__(self, version, *args, **kwargs):
        self.url_suffix = "proxyValidate" if version == 2 else "p3/proxyValidate"
        super().__init__(*args, **kwargs)


def proxied_chain(response):
    """Return the cas:proxy URLs of a validation response, most recent first."""
    from lxml import etree

    root = etree.fromstring(response)
    return root.xpath("//cas:proxies/cas:proxy/text()", namespaces={"cas": "http://www.yale.edu/tp/cas"})


def proxy(args):
    """Obtain a proxy-granting ticket through an HTTPS callback, a proxy ticket for the
    target service, and validate that proxy ticket as the target service would."""
    callback_server = start_callback_server(args.callback_port, args.cert, args.key)
    callback = f"https://127.0.0.1:{args.callback_port}/callback"
    try:
        ticket = sign_in(args.cas, args.service, args.username, args.password)
        proxying = client(args.version, args, proxy_callback=callback)
        user, _, iou = proxying.verify_ticket(ticket)
        print(f"proxying service user={user}")
        if user is None or not iou:
            raise Failure("validation with pgtUrl returned no user or no pgtIou")
        pgt = callback_server.tickets.get(iou)
        if pgt is None or not pgt.startswith("PGT-"):
            raise Failure("the proxy callback received no PGT- ticket for the pgtIou")
        print("proxy granting ticket=received")

        proxy_ticket = client(args.version, args, service=args.target).get_proxy_ticket(pgt)
        if not proxy_ticket.startswith("PT-"):
            raise Failure("/proxy returned a ticket without the PT- prefix")
        print("proxy ticket=issued")

        target = ProxyValidator(args.version, service_url=args.target, server_url=args.cas)
        response = target.get_verification_response(proxy_ticket)
        user, attributes, _ = target.verify_response(response)
        print_validation("target ", user, attributes)
        for proxied in proxied_chain(response):
            print(f"target proxy={proxied}")
        if user is None:
            raise Failure("proxyValidate returned no user for a fresh proxy ticket")

        second = client(args.version, args, service=args.target).get_proxy_ticket(pgt)
        user, _, _ = client(args.version, args, service=args.target).verify_ticket(second)
        print(f"serviceValidate of a proxy ticket user={user}")
        if user is not None:
            raise Failure("serviceValidate accepted a proxy ticket")
    finally:
        callback_server.shutdown()


SCENARIOS = {
    "v1": lambda args: validate_once(1, args),
    "v2": lambda args: validate_once(2, args),
    "v3": lambda args: validate_once(3, args),
    "saml": lambda args: validate_once("CAS_2_SAML_1_0", args),
    "reuse": reuse,
    "wrong-service": wrong_service,
    "proxy": proxy,
}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", choices=sorted(SCENARIOS))
    parser.add_argument("--cas", required=True, help="CAS base URL ending with a slash")
    parser.add_argument("--service", required=True, help="service URL to sign in to")
    parser.add_argument("--username", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--version", type=int, default=3, choices=[1, 2, 3],
                        help="CAS protocol version of reuse, wrong-service and proxy")
    parser.add_argument("--other-service", help="second registered service URL (wrong-service)")
    parser.add_argument("--target", help="target service URL of the proxy ticket (proxy)")
    parser.add_argument("--callback-port", type=int, help="port of the HTTPS proxy callback")
    parser.add_argument("--cert", help="certificate file of the proxy callback (PEM)")
    parser.add_argument("--key", help="private key file of the proxy callback (PEM)")
    return parser.parse_args()


def main():
    args = parse_arguments()
    try:
        SCENARIOS[args.scenario](args)
    except (Failure, cas.CASError, requests.RequestException) as error:
        print(f"error: {args.scenario}: {error}", file=sys.stderr)
        return 1
    print("result=ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
