# Minimal RTMP "server": simple handshake (S1 version 0, S2 echoes C1), then records
# everything the client sends (C0+C1, C2 and the chunk stream) until it goes quiet.
import socket, sys, os
out = sys.argv[1]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[2]))); srv.listen(1)
conn, _ = srv.accept()
def read_exact(n):
    b = b""
    while len(b) < n:
        d = conn.recv(n - len(b))
        if not d: raise SystemExit("eof")
        b += d
    return b
c0c1 = read_exact(1537)
s1 = b"\0\0\0\0" + b"\0\0\0\0" + bytes((i * 7) & 0xff for i in range(1528))
conn.sendall(b"\x03" + s1 + c0c1[1:])
rest = b""
conn.settimeout(2.0)
try:
    while len(rest) < 1536 + 8192:
        d = conn.recv(65536)
        if not d: break
        rest += d
except socket.timeout:
    pass
open(out, "wb").write(c0c1 + rest)
print("captured", len(c0c1) + len(rest), "bytes")
