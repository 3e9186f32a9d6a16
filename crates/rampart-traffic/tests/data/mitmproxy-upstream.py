import json, gzip
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def _send(self, code, body, ctype="application/json", gz=False):
        b = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        if gz:
            b = gzip.compress(b); self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        if self.path.startswith("/gz"):
            self._send(200, json.dumps({"items":[1,2,3]}), gz=True)
        elif self.path.startswith("/missing"):
            self._send(404, json.dumps({"error":"not found"}))
        else:
            self._send(200, json.dumps({"id": 7, "path": self.path}))
    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0)); body = self.rfile.read(n)
        self._send(201, json.dumps({"got": len(body)}))
    def log_message(self, *a): pass
HTTPServer(("127.0.0.1", 18931), H).serve_forever()
