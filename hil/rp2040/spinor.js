'use strict';
/*
 * A serial NOR flash (W25Q16JV-like, 2 MB) as the RP2040's SSI sees it in standard SPI mode: one
 * byte out, one byte back. It holds the board's flash image and its 64-bit unique id, which
 * MicroPython's machine.unique_id() returns. Commands: what the bootrom's flash functions and
 * pico-sdk's flash_do_cmd send (boot2's quad XIP set-up never reaches here).
 */

const JEDEC_ID = [0xef, 0x40, 0x15];
const SECTOR = 4096;
const PAGE = 256;

class SpiNorFlash {
  constructor(size, uid) {
    this.data = new Uint8Array(size).fill(0xff);
    this.uid = uid;
    this.wel = false;
    this.dirty = false;
    this.written = false;
    this.cutIn = 0; // the rig's mid-write power cut: the cutIn-th program or erase from now fails half-way
    this.cutAt = 0; // the byte of the failing page program at which power fails
    this.failed = false; // power failed during a write: nothing more reaches the array
    this.deselect();
  }

  /** The start of a program or erase: count it against an armed power cut. */
  writeStarts() {
    if (!this.cutIn) return false;
    this.cutIn -= 1;
    return this.cutIn === 0;
  }

  /** Chip select released: a program or erase completes, the next byte is a command. */
  deselect() {
    if (this.cmd !== undefined && this.cmd !== null) this.finish();
    this.cmd = null;
    this.n = 0;
    this.addr = 0;
  }

  finish() {
    if (this.failed) return;
    if (this.cmd === 0x02 && this.cutAt) { this.failed = true; this.cutAt = 0; return; } // a short program: cut at its end
    const erase = { 0x20: SECTOR, 0x52: 32 * 1024, 0xd8: 64 * 1024 }[this.cmd];
    if (erase && this.n >= 4 && this.wel) {
      const start = this.addr & ~(erase - 1) & (this.data.length - 1);
      const cut = this.writeStarts();
      this.data.fill(0xff, start, start + (cut ? erase / 2 : erase)); // a cut erase: half of it done
      this.written = true;
      if (cut) this.failed = true;
    }
    if ((this.cmd === 0xc7 || this.cmd === 0x60) && this.wel) { this.data.fill(0xff); this.written = true; }
    if ([0x02, 0x20, 0x52, 0xd8, 0xc7, 0x60, 0x01, 0x31].includes(this.cmd)) this.wel = false;
  }

  transfer(byte) {
    const i = this.n++;
    if (i === 0) {
      this.cmd = byte;
      if (byte === 0x06) this.wel = true;
      if (byte === 0x04) this.wel = false;
      return 0xff;
    }
    switch (this.cmd) {
      case 0x05: return this.wel ? 0x02 : 0x00; // status 1: never busy, WEL
      case 0x35: return 0x02; // status 2: QE set (boot2 then leaves the status alone)
      case 0x15: return 0x60;
      case 0x9f: return JEDEC_ID[i - 1] !== undefined ? JEDEC_ID[i - 1] : 0xff;
      case 0x4b: return i >= 5 && i < 13 ? this.uid[i - 5] : 0xff; // 4 dummy bytes, then the id
      case 0x03: case 0x0b: {
        const dummy = this.cmd === 0x0b ? 1 : 0;
        if (i <= 3) { this.addr = (this.addr << 8) | byte; return 0xff; }
        if (i < 4 + dummy) return 0xff;
        const v = this.data[this.addr & (this.data.length - 1)];
        this.addr += 1;
        return v;
      }
      case 0x02: {
        if (i <= 3) {
          this.addr = (this.addr << 8) | byte;
          if (i === 3 && this.wel && this.writeStarts()) this.cutAt = i + PAGE / 2; // half a page gets written
          return 0xff;
        }
        if (this.cutAt && i > this.cutAt) { this.failed = true; this.cutAt = 0; }
        if (this.wel && !this.failed) {
          const a = this.addr & (this.data.length - 1);
          this.data[a] &= byte; // NOR: programming only clears bits
          this.addr = (this.addr & ~(PAGE - 1)) | ((this.addr + 1) & (PAGE - 1)); // wraps in its page
          this.written = true;
        }
        return 0xff;
      }
      case 0x20: case 0x52: case 0xd8:
        if (i <= 3) this.addr = (this.addr << 8) | byte;
        return 0xff;
      default:
        return 0xff;
    }
  }
}

module.exports = { SpiNorFlash };
