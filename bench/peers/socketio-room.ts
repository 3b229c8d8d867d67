// Peer: a Socket.IO room: every "echo" event is emitted to the room.
import { createServer } from "node:http";
import { Server } from "socket.io";
import { listenPort, ready } from "./common.js";

const httpServer = createServer();
const io = new Server(httpServer, { transports: ["websocket"], perMessageDeflate: false });
io.on("connection", (socket) => {
  void socket.join("room");
  socket.on("echo", (data: unknown) => void io.to("room").emit("echo", data));
});
httpServer.listen(listenPort(), "127.0.0.1", ready);
