'use strict';
/*
 * Two emulated Picos on one clock, wired together as docs/hil.md draws the bench: the pump board
 * (the device under test, "dut") and the HIL fixture board ("fixture", running hil/fixture/).
 * Started by hil/rp2040/pair.py, which owns the two ptys.
 *
 *   node pair.js --bootrom FILE --uf2 FILE --dut-flash FILE --dut-uid HEX16 --dut-pty-fd N
 *                --fixture-flash FILE --fixture-uid HEX16 --fixture-pty-fd N
 *
 * Each chip is a Board of board.js (its own flash image, unique id and USB CDC pty). They run
 * in lockstep: neither runs more than QUANTUM_NS of chip time ahead of the other, and when both
 * cores wait for an interrupt both jump to the next timer alarm of either. A pin that changes on
 * one chip drives the wired pin of the other at once (WIRES below); what is analog on the bench
 * is modelled: the fixture's PWM through the RC filter sets the pump's VSYS supply (its duty
 * averaged with the filter's 10 ms time constant, the carrier itself not toggled), which the
 * pump reads on ADC3 (VSYS/3) and the fixture on ADC0 (VSYS/2); the load switch, the RUN pin and
 * a supply below the pump's brown-out cut the pump's power. stdin/stdout carry the control
 * channel, one JSON object per line, as board.js's.
 */

const { Board, NS_PER_CYCLE } = require('./board.js');
const { args, reply, timeCommand, serve } = require('./control.js');

const QUANTUM_NS = 20000; // the most one chip's time runs ahead of the other's (a STEP period is 1 ms)
const RC_TAU_NS = 10e6; // 10 kOhm x 1 uF
const SUPPLY_GAIN = 2; // VSYS = 2 x the filtered set-point (hil/fixture/fixture.py)
const VREF_MV = 3300;
const BROWNOUT_MV = 1800; // below this the Pico's buck-boost stops: the pump is off
const FUNC_PWM = 4;
const FUNC_SIO = 5;

// docs/hil.md "Wiring": the logic lines, pump GPIO <-> fixture GPIO (both ways: whichever side
// drives sets the other's input; neither: each side reads its own pull)
const WIRES = [
  { name: 'STEP', dut: 2, fixture: 2 },
  { name: 'DIR', dut: 3, fixture: 3 },
  { name: '/EN', dut: 4, fixture: 4 },
  { name: 'rotor', dut: 5, fixture: 5 }, // the fixture's open-drain output, the pump's pull-up
  { name: 'buzzer', dut: 15, fixture: 6 },
];
// fixture outputs through a 2N7002 (high = asserted) and the analog set-point
const FX_JUMPER = 13; // pulls pump GP22 (maintenance jumper) to GND
const FX_RUN = 14; // pulls pump RUN low: held in reset
const FX_CUT = 15; // load switch off: pump VSYS open
const FX_VSET = 16; // PWM 0A -> RC -> VSYS supply set-point
const DUT_MAINT = 22;
const DUT_ADC_VSYS = 3;
const FX_ADC_VSYS = 0;

class Pair {
  constructor(opt) {
    const common = { bootrom: opt.bootrom, uf2: opt.uf2 };
    this.fixture = new Board({ ...common, flash: opt['fixture-flash'], uid: opt['fixture-uid'], 'pty-fd': opt['fixture-pty-fd'] });
    this.dut = new Board({ ...common, flash: opt['dut-flash'], uid: opt['dut-uid'], 'pty-fd': opt['dut-pty-fd'] });
    this.fixture.rtc.present = false; // the DS3231 is the pump's
    this.dut.rotorMode = 'stalled'; // board.js's own fixture stays silent: the fixture chip drives the rotor
    this.vsysMv = 0; // the supply's output, filtered
    this.dutOn = true;
    this.mode = 'paced';
    this.advance = null;
    this.pulse = null;
    for (const [b, side] of [[this.fixture, 'fixture'], [this.dut, 'dut']]) {
      const boot = b.boot.bind(b);
      b.boot = (reason, scratch) => { boot(reason, scratch); this.attach(b, side); };
      this.attach(b, side);
    }
    this.powerDut(false); // no supply until the fixture's firmware sets it
    this.paceFrom();
  }

  // -- the wiring --------------------------------------------------------------------------------
  attach(board, side) {
    const mcu = board.mcu;
    const other = side === 'dut' ? 'fixture' : 'dut';
    for (const w of WIRES) {
      const pin = mcu.gpio[w[side]];
      pin.listeners.add(() => this.propagate(board, w[side], this[other], w[other]));
    }
    if (side === 'fixture') {
      for (const i of [FX_JUMPER, FX_RUN, FX_CUT]) mcu.gpio[i].listeners.add(() => this.fixtureOutputs());
      // the set-point is the PWM duty, averaged by the RC filter: no carrier edges to emulate
      const ch = mcu.pwm.channels[0];
      ch.updateEnable = function () { this.timer.enable = false; };
      ch.timer.enable = false;
    }
    // what the other side drives now reaches the new chip's inputs
    for (const w of WIRES) this.propagate(this[other], w[other], board, w[side]);
    this.fixtureOutputs();
  }

  propagate(from, i, to, j) {
    if (!from.mcu || !to.mcu) return;
    const pin = from.mcu.gpio[i];
    const driven = from === this.dut && !this.dutOn ? null : pin.outputEnable ? pin.outputValue : null;
    const ext = to.ext.has(j) ? to.ext.get(j) : null;
    if (driven !== ext) to.drive(j, driven);
  }

  /** A fixture output through its 2N7002: high when it drives the pin high (a released pin
   *  has the gate's pull-down). */
  asserted(i) {
    const pin = this.fixture.mcu.gpio[i];
    return pin.functionSelect === FUNC_SIO && pin.outputEnable && pin.outputValue;
  }

  fixtureOutputs() {
    if (!this.fixture.mcu || !this.dut.mcu) return;
    const jumper = this.asserted(FX_JUMPER) ? false : null;
    const ext = this.dut.ext.has(DUT_MAINT) ? this.dut.ext.get(DUT_MAINT) : null;
    if (jumper !== ext) this.dut.drive(DUT_MAINT, jumper);
    this.updatePower();
  }

  setPoint() {
    const pin = this.fixture.mcu.gpio[FX_VSET];
    const ch = this.fixture.mcu.pwm.channels[0];
    if (pin.functionSelect !== FUNC_PWM || !(ch.csr & 1)) return 0;
    let duty = Math.min(1, (ch.cc & 0xffff) / (ch.top + 1));
    if (ch.csr & (1 << 2)) duty = 1 - duty; // A_INV
    return duty * VREF_MV;
  }

  /** The RC filter and the supply over dtNs; the ADCs read the result. */
  analog(dtNs) {
    const target = this.setPoint() * SUPPLY_GAIN;
    const before = this.vsysMv;
    this.vsysMv += (target - this.vsysMv) * (1 - Math.exp(-dtNs / RC_TAU_NS));
    if (Math.abs(this.vsysMv - target) < 0.5) this.vsysMv = target;
    if (Math.abs(this.vsysMv - before) < 0.1 && this.adcSet) return;
    this.adcSet = true;
    this.fixture.mcu.adc.channelValues[FX_ADC_VSYS] = adc12(this.vsysMv / 2);
    this.dut.batteryMv = Math.round(this.vsysMv);
    this.dut.mcu.adc.channelValues[DUT_ADC_VSYS] = adc12(this.vsysMv / 3);
    this.updatePower();
  }

  updatePower() {
    const on = !this.asserted(FX_CUT) && !this.asserted(FX_RUN) && this.vsysMv >= BROWNOUT_MV;
    if (on !== this.dutOn) this.powerDut(on);
  }

  powerDut(on) {
    const dut = this.dut;
    this.dutOn = on;
    if (!on) {
      dut.saveFlash();
      dut.powered = false;
      const wd = dut.mcu.peripherals[0x40058]; // an unpowered chip's watchdog does not bite
      wd.timer.enable = false;
      wd.alarm.enable = false;
      dut.emit({ event: 'dut_off', at_ms: dut.nowMs() });
      for (const w of WIRES) this.propagate(dut, w.dut, this.fixture, w.fixture);
      return;
    }
    dut.powered = true;
    dut.boot(0, null); // power-on reset: RAM, REASON and SCRATCH cleared, flash kept
    dut.mcu.adc.channelValues[DUT_ADC_VSYS] = adc12(this.vsysMv / 3);
    dut.emit({ event: 'dut_on', at_ms: dut.nowMs() });
  }

  // -- one clock -----------------------------------------------------------------------------------
  nowNs() { return Math.min(this.dut.nowNs(), this.fixture.nowNs()); }
  nowMs() { return Math.floor(this.nowNs() / 1e6); }
  paceFrom() { this.paceWall = process.hrtime.bigint(); this.paceSim = this.nowNs(); }

  idle(b) { return !b.powered || b.frozen || b.mcu.core.waiting; }
  nextAlarmNs(b) {
    const n = b.mcu.clock.nanosToNextAlarm;
    return n > 0 ? b.nowNs() + n : Infinity;
  }

  /** Run one chip until its time reaches `untilNs` (rig time), or it reboots. */
  runChip(b, untilNs) {
    const mcu = b.mcu;
    const { core, clock } = mcu;
    const limit = untilNs - b.baseNs;
    while (clock.nanos < limit) {
      if (b.rebootPending !== null) {
        if (b.powered) b.reboot(b.rebootPending);
        else b.rebootPending = null;
        return;
      }
      if (b.mcu !== mcu) return;
      if (core.waiting || b.frozen || !b.powered) {
        const next = clock.nanosToNextAlarm;
        const room = limit - clock.nanos;
        clock.tick(Math.min(next > 0 ? next : room, room));
      } else {
        clock.tick(core.executeInstruction() * NS_PER_CYCLE);
      }
    }
  }

  /** Both chips to `targetNs` or until the wall-time budget is spent; true when reached. */
  run(targetNs, wallMs) {
    const wallEnd = Date.now() + wallMs;
    let rounds = 0;
    for (;;) {
      const a = this.dut.nowNs(), f = this.fixture.nowNs();
      const t = Math.min(a, f);
      if (t >= targetNs) return true;
      if ((++rounds & 63) === 0 && Date.now() > wallEnd) return false;
      let horizon;
      if (this.idle(this.dut) && this.idle(this.fixture) && !this.pulse) {
        // both asleep: nothing changes on a wire before the next alarm of either
        horizon = Math.min(targetNs, Math.max(a, f, Math.min(this.nextAlarmNs(this.dut), this.nextAlarmNs(this.fixture))));
      } else {
        horizon = Math.min(targetNs, t + QUANTUM_NS);
      }
      if (this.pulse && this.pulse.nextNs < horizon) horizon = Math.max(t, this.pulse.nextNs);
      this.runChip(this.dut, horizon);
      this.runChip(this.fixture, horizon);
      this.pulseStep();
      this.analog(this.nowNs() - t);
    }
  }

  /** A pulse train on a fixture pin, for the fixture firmware's counting test. */
  pulseStep() {
    const p = this.pulse;
    if (!p) return;
    while (p && this.fixture.nowNs() >= p.nextNs) {
      if (p.high) {
        this.fixture.drive(p.pin, false);
        p.high = false;
        p.left -= 1;
        p.nextNs += p.periodNs - p.highNs;
        if (!p.left) { this.fixture.drive(p.pin, null); this.pulse = null; return; }
      } else {
        this.fixture.drive(p.pin, true);
        p.high = true;
        p.nextNs += p.highNs;
      }
    }
  }

  slice() {
    let target;
    if (this.advance) target = this.advance.untilNs;
    else if (this.mode === 'paced') target = this.paceSim + Number(process.hrtime.bigint() - this.paceWall);
    else target = this.nowNs();
    const reached = this.run(target, 20);
    if (reached && this.advance) {
      const { id } = this.advance;
      this.advance = null;
      this.paceFrom();
      this.reply({ id, ok: true, now_ms: this.nowMs() });
    }
    return reached;
  }

  // -- control channel -----------------------------------------------------------------------------
  reply(obj) { reply(obj); }

  control(msg) {
    const { id, cmd } = msg;
    const ok = (extra) => this.reply(Object.assign({ id, ok: true, now_ms: this.nowMs() }, extra || {}));
    if (timeCommand(this, msg, ok)) return;
    switch (cmd) {
      case 'state':
        return ok({
          dut: Object.assign(this.dut.state(), { on: this.dutOn }), fixture: this.fixture.state(),
          vsys_mv: Math.round(this.vsysMv), jumper: this.asserted(FX_JUMPER), run_held: this.asserted(FX_RUN),
          cut: this.asserted(FX_CUT),
        });
      case 'pulses': {
        if (this.pulse) return this.reply({ id, ok: false, error: 'a pulse train is running' });
        const start = this.fixture.nowNs() + 1000;
        this.pulse = { pin: msg.pin, left: msg.n, highNs: msg.high_us * 1000, periodNs: msg.period_us * 1000, nextNs: start, high: false };
        return ok({ done_ms: (start + msg.n * msg.period_us * 1000) / 1e6 });
      }
      case 'save':
        this.dut.saveFlash(); this.fixture.saveFlash(); return ok();
      case 'quit':
        this.dut.saveFlash(); this.fixture.saveFlash(); ok(); process.exit(0);
      default:
        return this.reply({ id, ok: false, error: `unknown pair command ${cmd}` });
    }
  }
}

function adc12(mv) {
  return Math.max(0, Math.min(4095, Math.round(mv * 4095 / VREF_MV)));
}

function main() {
  const pair = new Pair(args(process.argv.slice(2)));
  pair.reply({ event: 'boot', dut_uid: pair.dut.opt.uid, fixture_uid: pair.fixture.opt.uid });
  serve(pair, () => {
    pair.dut.pollHost();
    pair.fixture.pollHost();
    return pair.slice() && !pair.advance;
  }, () => { pair.dut.saveFlash(); pair.fixture.saveFlash(); });
}

main();
