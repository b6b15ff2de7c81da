"""An SMTP server for herald's tests, on aiosmtpd: it stores every message it takes in a
maildir (with X-RcptTo headers, like aiosmtpd's Mailbox handler), and can be told to
refuse some recipients with 550, to require STARTTLS with a given certificate, and to
require AUTH (PLAIN or LOGIN) with one user and password, only over TLS.

    python smtpd.py --port P --maildir DIR [--reject REGEX] [--cert PEM --key PEM]
                    [--auth USER:PASSWORD]
"""

import argparse
import asyncio
import re
import ssl

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler(Mailbox):
    def __init__(self, maildir, reject):
        super().__init__(maildir)
        self.reject = re.compile(reject) if reject else None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.reject and self.reject.search(address):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == user.encode()
            and auth_data.password == password.encode()
        )
        return AuthResult(success=ok, handled=False)

    return check


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--maildir", required=True)
    parser.add_argument("--reject")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--auth")
    args = parser.parse_args()

    handler = Handler(args.maildir, args.reject)
    context = None
    if args.cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
    check = None
    if args.auth:
        user, password = args.auth.split(":", 1)
        check = authenticator(user, password)

    def factory():
        return SMTP(
            handler,
            tls_context=context,
            require_starttls=context is not None,
            authenticator=check,
            auth_required=check is not None,
            auth_require_tls=context is not None,
        )

    loop = asyncio.get_running_loop()
    server = await loop.create_server(factory, "127.0.0.1", args.port)
    async with server:
        await server.serve_forever()


asyncio.run(main())
