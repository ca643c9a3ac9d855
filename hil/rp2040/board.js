'use strict';
/*
 * One emulated Raspberry Pi Pico (RP2040) on rp2040js, running the real rp2 MicroPython image,
 * with the HIL fixture played on its pins. Started by hil/rp2040/board.py, which owns the pty.
 *
 *   node board.js --bootrom FILE --uf2 FILE --flash FILE --uid HEX16 [--pty-fd 3]
 *
 * fd 3 (--pty-fd) is the master side of a pseudo-terminal: the board's USB CDC. stdin/stdout carry
 * the control channel, one JSON object per line: {"id": N, "cmd": ..., ...} -> {"id": N, ...}.
 * Unsolicited lines carry "event" (boot, reboot). Nothing else may write to stdout.
 *
 * What rp2040js 1.4.1 lacks for MicroPython is added here (see ../../docs/rp2040.md, and the
 * gaps listed with the RP2040 test equipment): an SPI-NOR flash behind the SSI with chip select,
 * core 1 idle in the bootrom (the SIO FIFO handshake), reboots on a watchdog bite or
 * machine.reset() keeping flash, REASON and SCRATCH, USB CDC input fed 64 bytes per OUT
 * transfer, GPIO pulls and output readback, a UART TX interrupt raised once per write, and PWM
 * counters that stay stopped (the buzzer's tone is read from its slice's registers).
 */

const fs = require('fs');
const path = require('path');
const { RP2040, USBCDC, BasePeripheral, ConsoleLogger, LogLevel, GPIOPinState, I2CMode } = require('rp2040js');
const { SpiNorFlash } = require('./spinor.js');
const { DS3231 } = require('./ds3231.js');
const { args, reply, timeCommand, serve } = require('./control.js');

const NS_PER_CYCLE = 8; // 125 MHz
const FLASH_SIZE = 2 * 1024 * 1024; // W25Q16JV on the Pico
const CDC_PACKET = 64; // full-speed bulk endpoint size

// fixture wiring (firmware/hal/rp2.py pin map, docs/hardware.md)
const PIN_STEP = 2;
const PIN_EN = 4;
const PIN_ROTOR = 5;
const PIN_MAINT = 22;
const BUZZER_SLICE = 7; // GP15 is PWM slice 7, channel B
const TONE_SETTLE_NS = 100e3; // register writes closer than this are one tone change
const TONE_LOG_MAX = 10000; // buzzer changes kept until the rig reads them
const ADC_VSYS = 3;
const STEPS_PER_STROKE = 8;
const ROTOR_PULSE_NS = 1e6;

function loadUF2(file, flash) {
  const data = fs.readFileSync(file);
  for (let off = 0; off + 512 <= data.length; off += 512) {
    const block = data.subarray(off, off + 512);
    if (block.readUInt32LE(0) !== 0x0a324655 || block.readUInt32LE(4) !== 0x9e5d5157) continue;
    const target = block.readUInt32LE(12);
    const size = block.readUInt32LE(16);
    flash.set(block.subarray(32, 32 + size), target - 0x10000000);
  }
}

class Board {
  constructor(opt) {
    this.opt = opt;
    this.bootrom = new Uint32Array(fs.readFileSync(opt.bootrom).buffer.slice(0));
    this.nor = new SpiNorFlash(FLASH_SIZE, Buffer.from(opt.uid, 'hex'));
    if (fs.existsSync(opt.flash)) {
      this.nor.data.set(fs.readFileSync(opt.flash).subarray(0, FLASH_SIZE));
    } else {
      loadUF2(opt.uf2, this.nor.data); // a blank board: MicroPython, no file system yet
      this.nor.dirty = true;
    }
    this.ptyFd = opt['pty-fd'] !== undefined ? Number(opt['pty-fd']) : null;
    this.rtc = new DS3231();
    this.baseNs = 0; // rig time of this chip's clock 0 (rig time runs on across reboots and cuts)
    this.mode = 'paced';
    this.frozen = false;
    this.powered = true;
    this.advance = null; // {untilNs, id}
    this.hostQueue = [];
    this.ext = new Map(); // pin -> level driven by the fixture
    this.rotorMode = 'healthy';
    this.intermittentMin = 0;
    this.batteryMv = 3900;
    this.steps = []; // rig ms of STEP rising edges
    this.rotorPulses = 0;
    this.buzzerHz = 0;
    this.toneNs = -Infinity;
    this.tones = []; // [rig ms, Hz] of every buzzer change since the rig last read them
    this.boots = 0;
    this.powerCuts = 0; // power cuts so far, the rig's and armed mid-write ones
    this.cyclesBefore = 0; // busy cycles of earlier chips
    this.txBytes = 0;
    this.dropped = 0;
    if (opt.jumper === '1') this.ext.set(PIN_MAINT, false);
    this.boot(0, null);
  }

  // -- chip life cycle -------------------------------------------------------------------------
  boot(reason, scratch) {
    if (this.mcu) {
      this.baseNs += this.mcu.clock.nanos;
      this.cyclesBefore += this.mcu.core.cycles;
    }
    const mcu = new RP2040();
    mcu.logger = new ConsoleLogger(LogLevel.Error, true);
    mcu.loadBootrom(this.bootrom);
    mcu.flash = this.nor.data; // XIP reads see the SPI-NOR array itself
    mcu.flash16 = new Uint16Array(mcu.flash.buffer, mcu.flash.byteOffset, FLASH_SIZE / 2);
    mcu.flashView = new DataView(mcu.flash.buffer, mcu.flash.byteOffset, FLASH_SIZE);
    this.mcu = mcu;
    this.rebootPending = null;
    this.pendingRead = null;
    this.hostQueue = [];
    this.edgesInStroke = 0;
    this.frozen = false; // a reset restarts a hung core
    this.nor.deselect();
    this.patchFlash(mcu);
    this.patchCore1(mcu);
    this.patchWatchdog(mcu, reason, scratch);
    this.patchUart(mcu);
    this.attachCdc(mcu);
    this.attachGpio(mcu);
    this.attachI2c(mcu);
    this.patchPwm(mcu);
    mcu.adc.channelValues[ADC_VSYS] = this.adcRaw();
    mcu.core.PC = 0x10000000; // boot2, as the bootrom's flash boot leaves it
    this.boots += 1;
    this.paceFrom();
  }

  reboot(reason) {
    const wd = this.mcu.peripherals[0x40058];
    const scratch = Uint32Array.from(wd.scratchData);
    this.emit({ event: 'reboot', reason: reason === 1 ? 'watchdog' : 'force', at_ms: this.nowMs() });
    this.boot(reason, scratch);
  }

  powerCut(offNs, why) {
    this.nor.failed = false;
    this.nor.cutIn = 0;
    this.nor.cutAt = 0;
    this.nor.dirty = true;
    this.saveFlash();
    this.baseNs += offNs;
    this.powerCuts += 1;
    this.emit({ event: 'power', at_ms: this.nowMs(), why: why || 'cut' });
    this.boot(0, null);
  }

  // -- the gaps ----------------------------------------------------------------------------------
  patchFlash(mcu) {
    const nor = this.nor;
    const board = this;
    const ssi = mcu.peripherals[0x18000];
    const rx = [];
    let forced = false;
    let idleTxn = true;
    const quad = () => ((ssi.crtlr0 >> 21) & 3) !== 0;
    const origRead = ssi.readUint32.bind(ssi);
    const origWrite = ssi.writeUint32.bind(ssi);
    ssi.readUint32 = (off) => {
      if (off === 0x60) {
        const v = rx.length ? rx.shift() : 0;
        if (!rx.length && !forced) idleTxn = true; // all answers read: the next byte starts anew
        return v;
      }
      if (off === 0x28) return 0x6 | (rx.length ? 0x8 : 0); // TFNF, TFE, RFNE; never busy
      if (off === 0x24) return rx.length;
      if (off === 0x20) return 0;
      return origRead(off);
    };
    ssi.writeUint32 = (off, value) => {
      if (off === 0x60) {
        if (quad()) { rx.push(0); return; } // XIP set-up by boot2: reads come from the array
        if (!forced && idleTxn) nor.deselect(); // chip select driven by the SSI itself
        idleTxn = false;
        rx.push(nor.transfer(value & 0xff));
        if (nor.written) { board.flashDirty(); nor.written = false; }
        return;
      }
      if (off === 0x08) { rx.length = 0; idleTxn = true; if (!forced) nor.deselect(); }
      origWrite(off, value);
    };
    // IO_QSPI: GPIO_QSPI_SS_CTRL (0x0c) OUTOVER forces chip select (bootrom and flash_do_cmd)
    class IoQspi extends BasePeripheral {
      constructor() { super(mcu, 'IO_QSPI_BASE'); this.regs = new Uint32Array(12); }
      readUint32(off) { return this.regs[off >> 2] || 0; }
      writeUint32(off, value) {
        this.regs[off >> 2] = value;
        if (off !== 0x0c) return;
        const over = (value >> 8) & 3;
        if (over === 2) { if (!forced) nor.deselect(); forced = true; }
        else { forced = false; nor.deselect(); idleTxn = true; }
      }
    }
    mcu.peripherals[0x40018] = new IoQspi();
    const origWrite32 = mcu.writeUint32.bind(mcu);
    mcu.writeUint32 = (address, value) => {
      address >>>= 0;
      if (address >= 0x10000000 && address < 0x18000000) return; // XIP is read-only
      origWrite32(address, value);
    };
  }

  patchCore1(mcu) {
    // Core 1 sits in the bootrom: when released from reset it pushes 0, then echoes the
    // launch sequence. Only core 0 runs code (_thread is unsupported).
    const sio = mcu.sio;
    const fifo = [];
    const origRead = sio.readUint32.bind(sio);
    const origWrite = sio.writeUint32.bind(sio);
    sio.readUint32 = (off) => {
      if (off === 0x50) return (fifo.length ? 1 : 0) | 2; // VLD, RDY
      if (off === 0x58) return fifo.length ? fifo.shift() : 0;
      return origRead(off);
    };
    sio.writeUint32 = (off, value) => {
      if (off === 0x50) return; // clear sticky errors
      if (off === 0x54) { fifo.push(value >>> 0); return; } // core 1's bootrom echoes
      origWrite(off, value);
    };
    const psm = mcu.peripherals[0x40010];
    const origPsm = psm.writeUint32.bind(psm);
    psm.writeUint32 = (off, value) => {
      const wasOff = psm.frceOff & 0x10000;
      origPsm(off, value);
      if (off === 0x04 && wasOff && !(psm.frceOff & 0x10000)) { fifo.length = 0; fifo.push(0); }
    };
  }

  patchWatchdog(mcu, reason, scratch) {
    const wd = mcu.peripherals[0x40058];
    wd.reason = reason;
    if (scratch) wd.scratchData.set(scratch);
    wd.onWatchdogTrigger = () => {
      // rp2040js re-arms a spent watchdog alarm 0 ns later, forever: stop it, reboot between
      // instructions.
      wd.timer.enable = false;
      wd.alarm.enable = false;
      if (this.rebootPending === null) this.rebootPending = wd.reason;
    };
  }

  patchUart(mcu) {
    for (const u of mcu.uart) {
      u.checkInterrupts = function () {
        this.rp2040.setInterrupt(this.irq, !!(this.interruptStatus & this.interruptMask));
      };
      const origWrite = u.writeUint32.bind(u);
      u.writeUint32 = (off, value) => {
        origWrite(off, value);
        if (off === 0) { u.interruptStatus |= 1 << 5; u.checkInterrupts(); } // TX: once per byte
      };
    }
  }

  patchPwm(mcu) {
    // rp2040js runs an enabled PWM slice's counter on clock alarms: the buzzer's slice, enabled
    // at boot (1 kHz, duty 0), woke the idle fast-forward twice a simulated millisecond and more
    // than halved its speed-up. Nothing in the firmware reads a PWM counter or takes its
    // interrupt, so the counters stay stopped; the registers still hold what the firmware wrote,
    // and the rig reads the buzzer's tone from them.
    for (const ch of mcu.pwm.channels) {
      ch.timer.enable = false;
      Object.defineProperty(ch.timer, 'enable', { get: () => false, set: () => {} });
    }
    const pwm = mcu.pwm;
    const origWrite = pwm.writeUint32.bind(pwm);
    pwm.writeUint32 = (off, value) => { origWrite(off, value); this.buzzerChanged(); };
    this.buzzerChanged(); // a reset silences it
  }

  /** The buzzer's tone in Hz from its PWM slice: 0 when the slice is off or its duty is 0. */
  buzzerTone() {
    const ch = this.mcu.pwm.channels[BUZZER_SLICE];
    if (!(ch.csr & 1) || !(ch.cc >>> 16)) return 0; // CSR.EN; channel B's compare level
    const div = (((ch.div >> 4) & 0xff) || 256) + (ch.div & 0xf) / 16;
    const phaseCorrect = ch.csr & 2 ? 2 : 1;
    return Math.round((this.mcu.pwm.clockFreq || 125e6) / (div * (ch.top + 1) * phaseCorrect));
  }

  buzzerChanged() {
    const hz = this.buzzerTone();
    if (hz === this.buzzerHz) return;
    this.buzzerHz = hz;
    const ns = this.nowNs();
    // the firmware writes a new tone's divider, top and level one by one: one change, not three
    if (this.tones.length && ns - this.toneNs < TONE_SETTLE_NS) this.tones[this.tones.length - 1][1] = hz;
    else this.tones.push([this.nowMs(), hz]);
    this.toneNs = ns;
    if (this.tones.length > TONE_LOG_MAX) this.tones.splice(0, this.tones.length - TONE_LOG_MAX);
  }

  attachCdc(mcu) {
    const cdc = new USBCDC(mcu.usbCtrl);
    this.cdc = cdc;
    cdc.onSerialData = (buf) => this.toHost(buf);
    mcu.usbCtrl.onEndpointRead = (ep, size) => {
      if (ep !== cdc.outEndpoint) return; // control OUT stages: nothing to hand over
      this.pendingRead = { ep, size };
      this.feedDevice();
    };
  }

  feedDevice() {
    const p = this.pendingRead;
    if (!p || !this.hostQueue.length) return;
    const n = Math.min(p.size, CDC_PACKET, this.hostQueue.length);
    const chunk = Uint8Array.from(this.hostQueue.splice(0, n));
    this.pendingRead = null;
    this.mcu.usbCtrl.endpointReadDone(p.ep, chunk);
  }

  attachGpio(mcu) {
    mcu.gpio.forEach((pin, i) => {
      pin.listeners.add((value, old) => {
        this.settle(i);
        if (i === PIN_STEP && value === GPIOPinState.High && old !== GPIOPinState.High) this.stepEdge();
      });
      this.settle(i);
    });
  }

  /** What an input reads: its own output (readback), else the fixture's drive, else its pull. */
  settle(i) {
    const pin = this.mcu.gpio[i];
    let level = pin.rawInputValue;
    if (pin.outputEnable) level = pin.outputValue;
    else if (this.ext.has(i)) level = this.ext.get(i);
    else if (pin.pullupEnabled && !pin.pulldownEnabled) level = true;
    else if (pin.pulldownEnabled && !pin.pullupEnabled) level = false;
    if (level !== pin.rawInputValue) pin.setInputValue(level);
  }

  drive(i, level) {
    if (level === null) this.ext.delete(i);
    else this.ext.set(i, level);
    this.settle(i);
  }

  attachI2c(mcu) {
    const i2c = mcu.i2c[0]; // GP20 SDA / GP21 SCL: the battery-backed DS3231
    const rtc = this.rtc;
    let ours = false;
    i2c.onConnect = (address, mode) => {
      ours = address === DS3231.ADDRESS && rtc.present;
      if (ours) rtc.start(mode === I2CMode.Read, this.nowNs());
      i2c.completeConnect(ours);
    };
    i2c.onWriteByte = (value) => { rtc.write(value, this.nowNs()); i2c.completeWrite(true); };
    i2c.onReadByte = () => i2c.completeRead(rtc.read());
    i2c.onStop = () => i2c.completeStop();
  }

  // -- the fixture -------------------------------------------------------------------------------
  stepEdge() {
    this.steps.push(this.nowMs());
    this.edgesInStroke += 1;
    if (this.edgesInStroke < STEPS_PER_STROKE) return;
    this.edgesInStroke = 0;
    const enabled = !this.mcu.gpio[PIN_EN].outputValue; // /EN low: the driver turns the rotor
    if (!enabled || this.rotorStuck()) return;
    this.rotorPulses += 1;
    this.drive(PIN_ROTOR, false);
    const mcu = this.mcu;
    mcu.clock.createAlarm(() => { if (this.mcu === mcu) this.drive(PIN_ROTOR, null); }).schedule(ROTOR_PULSE_NS);
  }

  rotorStuck() {
    if (this.rotorMode === 'stalled') return true;
    if (this.rotorMode !== 'intermittent') return false;
    const cycleMs = this.intermittentMin * 60000;
    return this.nowMs() % cycleMs < 20 * 60000; // stuck the first 20 min of every cycle
  }

  adcRaw() {
    return Math.max(0, Math.min(4095, Math.round((this.batteryMv / 3) * 4095 / 3300)));
  }

  // -- time ----------------------------------------------------------------------------------------
  nowNs() { return this.baseNs + this.mcu.clock.nanos; }
  nowMs() { return Math.floor(this.nowNs() / 1e6); }
  paceFrom() { this.paceWall = process.hrtime.bigint(); this.paceSim = this.mcu.clock.nanos; }

  /** Run for about 20 ms of wall time; fast-forward idle time as the mode allows. */
  slice() {
    const mcu = this.mcu;
    const { core, clock } = mcu;
    const wallEnd = Date.now() + 20;
    let paceTarget = clock.nanos; // 'free': the chip only runs in advance()
    if (this.mode === 'paced' && !this.advance) {
      paceTarget = this.paceSim + Number(process.hrtime.bigint() - this.paceWall);
    }
    const limit = this.advance ? this.advance.untilNs - this.baseNs : paceTarget;
    while (Date.now() < wallEnd) {
      for (let i = 0; i < 5000; i++) {
        if (this.rebootPending !== null) { this.reboot(this.rebootPending); return; }
        if (this.nor.failed) { this.powerCut(0, 'mid_write'); return; }
        if (this.mcu !== mcu) return;
        if (clock.nanos >= limit) { this.reached(); return true; }
        if (core.waiting || this.frozen || !this.powered) {
          const next = clock.nanosToNextAlarm;
          const room = limit - clock.nanos;
          clock.tick(Math.min(next > 0 ? next : room, room));
        } else {
          clock.tick(core.executeInstruction() * NS_PER_CYCLE);
        }
      }
    }
  }

  reached() {
    if (!this.advance) return;
    const { id } = this.advance;
    this.advance = null;
    this.paceFrom();
    this.reply({ id, ok: true, now_ms: this.nowMs() });
  }

  // -- the USB CDC link ------------------------------------------------------------------------------
  toHost(buf) {
    this.txBytes += buf.length;
    if (this.ptyFd === null) return;
    try { fs.writeSync(this.ptyFd, buf); } catch (e) { this.dropped += buf.length; } // no reader
  }

  pollHost() {
    if (this.ptyFd === null) return;
    const buf = Buffer.alloc(4096);
    for (;;) {
      let n = 0;
      try { n = fs.readSync(this.ptyFd, buf, 0, buf.length, null); } catch (e) { return; } // EAGAIN / EIO
      if (n <= 0) return;
      if (this.powered) for (let i = 0; i < n; i++) this.hostQueue.push(buf[i]);
      this.feedDevice();
    }
  }

  // -- flash persistence ---------------------------------------------------------------------------
  flashDirty() {
    this.nor.dirty = true;
  }

  saveFlash() {
    if (!this.nor.dirty) return;
    const tmp = this.opt.flash + '.tmp';
    fs.writeFileSync(tmp, this.nor.data);
    fs.renameSync(tmp, this.opt.flash);
    this.nor.dirty = false;
  }

  // -- control channel -----------------------------------------------------------------------------
  emit(obj) { reply(obj); }
  reply(obj) { reply(obj); }

  control(msg) {
    const { id, cmd } = msg;
    const ok = (extra) => this.reply(Object.assign({ id, ok: true, now_ms: this.nowMs() }, extra || {}));
    if (timeCommand(this, msg, ok)) return;
    switch (cmd) {
      case 'peek': {
        const m = this.mcu; const words = [];
        for (let k = 0; k < (msg.n || 16); k++) words.push(m.readUint32(msg.addr + 4 * k) >>> 0);
        let str = ''; if (msg.str) { for (let a = msg.str; a < msg.str + 200; a++) { const c = m.readUint8(a); if (!c) break; str += String.fromCharCode(c); } }
        return ok({ words, str, sp: m.core.SP });
      }
      case 'debug':
        return ok({ pc: this.mcu.core.PC, lr: this.mcu.core.LR, waiting: this.mcu.core.waiting });
      case 'state':
        return ok(this.state());
      case 'steps': {
        const from = msg.from || 0;
        return ok({ count: this.steps.length, edges: msg.edges ? this.steps.slice(from) : undefined });
      }
      case 'tones': {
        const tones = this.tones;
        this.tones = [];
        return ok({ tones, buzzer_hz: this.buzzerHz });
      }
      case 'rotor':
        this.rotorMode = msg.mode; this.intermittentMin = msg.every_min || 60; return ok();
      case 'battery':
        this.batteryMv = msg.mv; this.mcu.adc.channelValues[ADC_VSYS] = this.adcRaw(); return ok();
      case 'jumper':
        this.drive(PIN_MAINT, msg.on ? false : null); return ok();
      case 'freeze':
        this.frozen = !!msg.on; return ok();
      case 'power_cut':
        this.powerCut((msg.off_s || 0) * 1e9); return ok();
      case 'cut_write': // power fails half-way through the n-th flash program or erase from now
        this.nor.cutIn = msg.n; return ok();
      case 'rtc':
        if (msg.set !== undefined) this.rtc.set(msg.set, this.nowNs());
        return ok({ rtc_s: this.rtc.seconds(this.nowNs()), present: this.rtc.present });
      case 'rtc_present':
        this.rtc.present = !!msg.on; return ok();
      case 'save':
        this.saveFlash(); return ok();
      case 'quit':
        this.saveFlash(); ok(); process.exit(0);
      default:
        return this.reply({ id, ok: false, error: `unknown rig command ${cmd}` });
    }
  }

  state() {
    const wd = this.mcu.peripherals[0x40058];
    return {
      boots: this.boots, power_cuts: this.powerCuts, cut_armed: this.nor.cutIn > 0, cycles: this.cyclesBefore + this.mcu.core.cycles, steps: this.steps.length,
      rotor_pulses: this.rotorPulses, buzzer_hz: this.buzzerHz, motor_on: !this.mcu.gpio[PIN_EN].outputValue,
      led: this.mcu.gpio[25].outputValue, frozen: this.frozen, mode: this.mode,
      reason: wd.reason, tx_bytes: this.txBytes, dropped: this.dropped, battery_mv: this.batteryMv,
      rx_queued: this.hostQueue.length, rx_armed: this.pendingRead !== null, pc: this.mcu.core.PC,
      waiting: this.mcu.core.waiting,
    };
  }
}

function main() {
  const opt = args(process.argv.slice(2));
  const board = new Board(opt);
  board.emit({ event: 'boot', uid: opt.uid, flash: path.resolve(opt.flash) });
  serve(board, () => { board.pollHost(); return board.slice(); }, () => board.saveFlash());
}

module.exports = { Board, NS_PER_CYCLE };  // hil/rp2040/pair.js runs two of them on one clock
if (require.main === module) main();
