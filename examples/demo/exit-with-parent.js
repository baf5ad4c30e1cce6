// Preloaded into the gateway the demo starts (`node --import`): run.js keeps an IPC channel to each child, and
// when that channel closes (run.js exited, crashed or was killed with SIGKILL) the child shuts down gracefully
// instead of living on as an orphan holding the demo's ports. The channel never keeps the child alive itself.
if (process.channel) {
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}
