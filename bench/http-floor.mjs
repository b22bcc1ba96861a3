// The floor under any server on Node's HTTP stack, for issue 19's target 4 (POST /token
// RS256 at 0.9 of the raw signing rate): node:http alone, no framework, no database, no
// log line, no signature. It reads the form body the bench's POST /token sends and answers
// a fixed JSON body the size of our token response with the same headers. Its CPU per
// request is what an RS256 grant costs beyond its signature at the very least, so
// sign / (sign + floor) bounds the ratio any Node server could reach on this core.
//
// Prints {"port":N,"msg":"listening"} on stdout, the line the bench's startServer waits for.
import http from 'node:http';

// A token response of the same length as ours (an RS256 access token is ~750 characters).
const body = JSON.stringify({ access_token: 'x'.repeat(760), token_type: 'Bearer', expires_in: 3600, scope: 'agents:read tokens:read' });

const server = http.createServer((request, response) => {
  const chunks = [];
  request.on('data', (chunk) => chunks.push(chunk));
  request.on('end', () => {
    // The body is read and split as a form, like any token endpoint must.
    const parameters = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    if (!parameters.get('grant_type')) {
      response.writeHead(400).end();
      return;
    }
    response.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', pragma: 'no-cache', 'content-length': Buffer.byteLength(body) });
    response.end(body);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: server.address().port, msg: 'listening' })}\n`);
});
