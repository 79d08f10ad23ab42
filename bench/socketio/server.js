// The socket.io side of bench/rooms.sh: one broadcast room per `room` query parameter.
// Every `chat` event a client sends goes to everyone in its room, the sender included,
// as an event shaped like onair's chat event (so frames are about the same size).
// WebSocket transport only, no compression, like onair. No auth, no rate limits, no
// history, no sampling: a lower bound on what a socket.io room server costs.
//
//   PORT=18090 node bench/socketio/server.js
"use strict";

const http = require("http");
const { Server } = require("socket.io");

const host = process.env.HOST || "127.0.0.1";
const port = Number(process.env.PORT || 18090);

const httpServer = http.createServer((req, res) => {
  res.writeHead(404).end();
});
const io = new Server(httpServer, {
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  maxHttpBufferSize: 16 * 1024,
  pingInterval: 20000,
  pingTimeout: 20000,
});

let seq = 0;
io.on("connection", (socket) => {
  const room = String(socket.handshake.query.room || "live/bench");
  socket.join(room);
  socket.on("chat", (message) => {
    if (!message || typeof message.text !== "string") return;
    seq += 1;
    io.to(room).emit("chat", {
      seq,
      ts: Date.now(),
      id: seq,
      user: { id: socket.id, name: "anonymous", role: "viewer" },
      text: message.text,
    });
  });
});

httpServer.listen(port, host, () => {
  const version = require("socket.io/package.json").version;
  console.log(`socket.io ${version} (node ${process.version}) on ${host}:${port}`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => {
    io.close();
    process.exit(0);
  });
}
