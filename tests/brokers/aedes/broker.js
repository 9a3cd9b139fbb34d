// A second, independent MQTT broker for Anxin's tests: aedes (npm) on 127.0.0.1:<port>, with
// its default in-memory persistence (persistent sessions and QoS 1 queues while the process
// lives). Usage: node broker.js <port>. Prints "listening <port>" once it accepts connections.
'use strict';
const aedes = require('aedes')();
const net = require('net');

const port = Number(process.argv[2] || 1884);
const server = net.createServer(aedes.handle);
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${port}\n`);
});
const stop = () => aedes.close(() => server.close(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
