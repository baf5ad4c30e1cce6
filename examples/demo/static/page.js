// WebSocket echo for the demo page (an external script: the gateway's Content-Security-Policy has no
// 'unsafe-inline' for scripts). Connects to /ws on the same origin, i.e. through the gateway.
const form = document.getElementById('ws-form');
const input = document.getElementById('ws-input');
const log = document.getElementById('ws-log');
const write = (line) => { log.textContent += `${line}\n`; };

const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
ws.addEventListener('open', () => write('open'));
ws.addEventListener('message', (e) => write(String(e.data)));
ws.addEventListener('close', (e) => write(`closed (${e.code})`));
ws.addEventListener('error', () => write('error (see the gateway log: examples/demo/.state/gateway.log)'));
form.addEventListener('submit', (e) => {
  e.preventDefault();
  if (ws.readyState === WebSocket.OPEN) ws.send(input.value);
});
