// The /hello of uvhttpd with node's http module, for bench/http_compare.py:
//     node bench/hello_node.js [PORT]     (prints "listening on 127.0.0.1:PORT")
'use strict';
const http = require('http');

const body = 'Hello, world!\n';
const server = http.createServer((req, res) => {
  if (req.url === '/hello') {
    res.writeHead(200, {'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': body.length});
    res.end(req.method === 'HEAD' ? undefined : body);
  } else {
    res.writeHead(404, {'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 14});
    res.end('404 Not Found\n');
  }
});
server.listen(Number(process.argv[2] || 0), '127.0.0.1', () => {
  console.log(`listening on 127.0.0.1:${server.address().port}`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
