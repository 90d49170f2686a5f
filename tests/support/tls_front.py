"""Local network pieces for the transport tests.

  tls_front.py front --cert C --key K --upstream http://127.0.0.1:PORT
      an HTTPS server on 127.0.0.1 (any free port) that forwards every request to UPSTREAM,
      as a TLS-terminating load balancer in front of the IdP and STS would;
  tls_front.py proxy --log FILE
      an HTTP proxy that tunnels CONNECT requests and appends each "CONNECT host:port" to FILE.

Each prints "listening PORT" once it serves."""

import argparse
import http.client
import http.server
import select
import socket
import socketserver
import ssl
import sys
import urllib.parse


def front(args):
    up = urllib.parse.urlsplit(args.upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def forward(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            conn.request(self.command, self.path, body=body, headers=headers)
            r = conn.getresponse()
            data = r.read()
            self.send_response(r.status)
            for k, v in r.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = forward

        def log_message(self, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request, client_address):
            # a client that refuses our certificate (what the rogue front is there for) aborts
            # the handshake: one line, not socketserver's traceback
            e = sys.exc_info()[1]
            if isinstance(e, (ssl.SSLError, ConnectionError)):
                print(f"tls_front: {client_address[0]}:{client_address[1]} ended the connection: {e}", file=sys.stderr)
            else:
                super().handle_error(request, client_address)

    httpd = Server(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    print("listening", httpd.server_address[1], flush=True)
    httpd.serve_forever()


def proxy(args):
    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            line = self.rfile.readline().decode("latin-1").strip()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            method, target, _ = line.split(" ", 2)
            with open(args.log, "a") as f:
                f.write(f"{method} {target}\n")
            if method != "CONNECT":
                self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, port = target.rsplit(":", 1)
            try:
                upstream = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self.wfile.flush()
            a, b = self.connection, upstream
            try:
                while True:
                    ready, _, _ = select.select([a, b], [], [], 60)
                    if not ready:
                        return
                    for s in ready:
                        data = s.recv(65536)
                        if not data:
                            return
                        (b if s is a else a).sendall(data)
            finally:
                upstream.close()

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server(("127.0.0.1", 0), Handler)
    print("listening", srv.server_address[1], flush=True)
    srv.serve_forever()


p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="what", required=True)
f = sub.add_parser("front")
f.add_argument("--cert", required=True)
f.add_argument("--key", required=True)
f.add_argument("--upstream", required=True)
x = sub.add_parser("proxy")
x.add_argument("--log", required=True)
a = p.parse_args()
sys.exit(front(a) if a.what == "front" else proxy(a))
