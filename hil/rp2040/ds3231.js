'use strict';
/*
 * A DS3231 battery-backed real-time clock at I2C address 0x68 (registers 0x00-0x06: BCD seconds,
 * minutes, hours (24 h), weekday, date, month, year 2000-2099). It keeps counting across the
 * board's power cuts and resets: it lives in the rig, not in the chip.
 */

const bcd = (v) => ((Math.floor(v / 10) << 4) | (v % 10));
const unbcd = (b) => (b >> 4) * 10 + (b & 0x0f);
const EPOCH2000_MS = Date.UTC(2000, 0, 1);

class DS3231 {
  constructor() {
    this.present = true;
    this.offsetS = 0; // RTC seconds since 2000 at rig time 0
    this.ptr = 0;
    this.writing = null;
    this.first = true;
  }

  seconds(nowNs) { return this.offsetS + Math.floor(nowNs / 1e9); }

  set(seconds2000, nowNs) { this.offsetS = seconds2000 - Math.floor(nowNs / 1e9); }

  registers(nowNs) {
    const d = new Date(EPOCH2000_MS + this.seconds(nowNs) * 1000);
    return [bcd(d.getUTCSeconds()), bcd(d.getUTCMinutes()), bcd(d.getUTCHours()), d.getUTCDay() + 1,
      bcd(d.getUTCDate()), bcd(d.getUTCMonth() + 1), bcd(d.getUTCFullYear() - 2000)];
  }

  start(read, nowNs) {
    this.first = !read;
    this.snapshot = this.registers(nowNs); // a transfer reads one consistent time
    if (!read) this.writing = null;
  }

  write(byte, nowNs) {
    if (this.first) { this.ptr = byte; this.first = false; this.writing = this.registers(nowNs); return; }
    if (this.ptr < 7) this.writing[this.ptr] = byte;
    this.ptr += 1;
    if (this.ptr === 7) {
      const r = this.writing;
      const t = Date.UTC(2000 + unbcd(r[6]), unbcd(r[5] & 0x1f) - 1, unbcd(r[4]), unbcd(r[2] & 0x3f),
        unbcd(r[1]), unbcd(r[0] & 0x7f));
      this.set(Math.floor((t - EPOCH2000_MS) / 1000), nowNs);
    }
  }

  read() {
    const v = this.ptr < 7 ? this.snapshot[this.ptr] : 0;
    this.ptr += 1;
    return v;
  }
}
DS3231.ADDRESS = 0x68;

module.exports = { DS3231 };
