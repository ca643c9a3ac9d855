'use strict';
// The runners' command line and control channel (board.js: one board; pair.js: a pump board and a fixture board on
// one clock), shared so the two speak it alike: one JSON object a line on stdin from the rig
// (hil/rp2040/board.py, pair.py), one a line on stdout back (replies, and events such as boot).

// --name value pairs (the rig's command line) as {name: value}
function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

function reply(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

// The commands every runner takes for the chip's time: `advance` s (answered by the runner's slice
// once the chip's clock gets there) and `pace` (paced with the wall clock, or free). True if taken.
function timeCommand(runner, msg, ok) {
  if (msg.cmd === 'advance') {
    runner.advance = { id: msg.id, untilNs: runner.nowNs() + msg.s * 1e9 };
    return true;
  }
  if (msg.cmd === 'pace') {
    runner.mode = msg.mode; runner.paceFrom(); ok();
    return true;
  }
  return false;
}

// Serves the rig: each command line goes to runner.control(msg); turn() runs the emulation a
// slice at a time and says whether it has caught up with the wall clock (the loop then gives the
// machine 2 ms); save() (the flash images) runs every half second and when the rig closes stdin.
function serve(runner, turn, save) {
  let buf = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.trim()) runner.control(JSON.parse(line));
    }
  });
  process.stdin.on('end', () => { save(); process.exit(0); });
  let saved = Date.now();
  const tick = () => {
    const caughtUp = turn();
    if (Date.now() - saved > 500) { save(); saved = Date.now(); }
    if (caughtUp) setTimeout(tick, 2);
    else setImmediate(tick);
  };
  setImmediate(tick);
}

module.exports = { args, reply, timeCommand, serve };
