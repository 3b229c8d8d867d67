// Peer: Socket.IO, websocket transport only; an "echo" event is emitted back.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { listenPort, ready } from "./common.js";

const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"], perMessageDeflate: false, maxHttpBufferSize: 16 * 1024 * 1024 });
io.on("connection", (socket) => {
  socket.on("echo", (data: unknown) => socket.emit("echo", data));
});
httpServer.listen(listenPort(), "127.0.0.1", ready);
