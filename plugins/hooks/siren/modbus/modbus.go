// Package modbus encodes and decodes the Modbus RTU frames of serial relay modules that the siren hook
// switches with function 05, Write Single Coil:
//
//	[slave][0x05][coil hi][coil lo][0xFF ON | 0x00 OFF][0x00][CRC lo][CRC hi]
//
// The CRC is CRC-16/MODBUS (init 0xFFFF, polynomial 0xA001 reflected) over the six bytes before it, sent
// low byte first. Slave 1, coil 0 ON is 01 05 00 00 FF 00 8C 3A; OFF is 01 05 00 00 00 00 CD CA.
//
// A module answers a write-coil request with an exact echo of it, or with an exception response
// [slave][0x85][exception code][CRC lo][CRC hi]. CheckReply tells the two apart in the bytes read back.
package modbus

import (
	"bytes"
	"fmt"
)

// Frame constants.
const (
	FuncWriteSingleCoil = 0x05
	// FuncWriteSingleCoilException is the function code of an exception response to FuncWriteSingleCoil.
	FuncWriteSingleCoilException = FuncWriteSingleCoil | 0x80
	FrameLen                     = 8
	ExceptionLen                 = 5
	MinSlave                     = 1
	MaxSlave                     = 247
	MinCoil                      = 0
	MaxCoil                      = 0xFFFF
)

// Frame is one write-single-coil request (or its echo).
type Frame struct {
	Slave uint8
	Coil  uint16
	On    bool
}

func (f Frame) String() string {
	state := "OFF"
	if f.On {
		state = "ON"
	}
	return fmt.Sprintf("slave %d coil %d %s", f.Slave, f.Coil, state)
}

// Bytes returns the frame on the wire, CRC included.
func (f Frame) Bytes() []byte {
	hi := byte(0x00)
	if f.On {
		hi = 0xFF
	}
	return appendCRC([]byte{f.Slave, FuncWriteSingleCoil, byte(f.Coil >> 8), byte(f.Coil), hi, 0x00})
}

// CRC returns the CRC-16/MODBUS of b.
func CRC(b []byte) uint16 {
	crc := uint16(0xFFFF)
	for _, x := range b {
		crc ^= uint16(x)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xA001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

func appendCRC(b []byte) []byte {
	c := CRC(b)
	return append(b, byte(c), byte(c>>8))
}

// crcOK reports whether the last two bytes of b are the CRC of the bytes before them.
func crcOK(b []byte) bool {
	n := len(b)
	return n >= 3 && CRC(b[:n-2]) == uint16(b[n-2])|uint16(b[n-1])<<8
}

// Encode returns the request that switches coil of slave on or off.
func Encode(slave, coil int, on bool) ([]byte, error) {
	if slave < MinSlave || slave > MaxSlave {
		return nil, fmt.Errorf("modbus: slave %d is out of range [%d, %d]", slave, MinSlave, MaxSlave)
	}
	if coil < MinCoil || coil > MaxCoil {
		return nil, fmt.Errorf("modbus: coil %d is out of range [%d, %d]", coil, MinCoil, MaxCoil)
	}
	return Frame{Slave: uint8(slave), Coil: uint16(coil), On: on}.Bytes(), nil
}

// ExceptionError is an exception response: the module refused the request.
type ExceptionError struct {
	Slave    uint8
	Function uint8 // the function code with the high bit set, 0x85 for Write Single Coil
	Code     uint8
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("modbus: slave %d answered exception 0x%02X (%s) to function 0x%02X",
		e.Slave, e.Code, exceptionName(e.Code), e.Function&0x7F)
}

func exceptionName(code uint8) string {
	switch code {
	case 0x01:
		return "illegal function"
	case 0x02:
		return "illegal data address"
	case 0x03:
		return "illegal data value"
	case 0x04:
		return "slave device failure"
	case 0x05:
		return "acknowledge"
	case 0x06:
		return "slave device busy"
	case 0x08:
		return "memory parity error"
	case 0x0A:
		return "gateway path unavailable"
	case 0x0B:
		return "gateway target device failed to respond"
	}
	return "unknown exception"
}

// Decode parses exactly one frame: a write-single-coil request or echo (8 bytes), or an exception response
// to one (5 bytes), which it returns as an *ExceptionError.
func Decode(b []byte) (Frame, error) {
	if len(b) == ExceptionLen && b[1] == FuncWriteSingleCoilException {
		if !crcOK(b) {
			return Frame{}, crcError(b)
		}
		if b[0] < MinSlave || b[0] > MaxSlave {
			return Frame{}, fmt.Errorf("modbus: slave %d is out of range [%d, %d]", b[0], MinSlave, MaxSlave)
		}
		return Frame{}, &ExceptionError{Slave: b[0], Function: b[1], Code: b[2]}
	}
	if len(b) != FrameLen {
		return Frame{}, fmt.Errorf("modbus: frame is %d bytes, want %d", len(b), FrameLen)
	}
	if !crcOK(b) {
		return Frame{}, crcError(b)
	}
	if b[0] < MinSlave || b[0] > MaxSlave {
		return Frame{}, fmt.Errorf("modbus: slave %d is out of range [%d, %d]", b[0], MinSlave, MaxSlave)
	}
	if b[1] != FuncWriteSingleCoil {
		return Frame{}, fmt.Errorf("modbus: function 0x%02X, want 0x%02X (write single coil)", b[1], FuncWriteSingleCoil)
	}
	var on bool
	switch {
	case b[4] == 0xFF && b[5] == 0x00:
		on = true
	case b[4] == 0x00 && b[5] == 0x00:
	default:
		return Frame{}, fmt.Errorf("modbus: coil value 0x%02X%02X is neither ON (0xFF00) nor OFF (0x0000)", b[4], b[5])
	}
	return Frame{Slave: b[0], Coil: uint16(b[2])<<8 | uint16(b[3]), On: on}, nil
}

func crcError(b []byte) error {
	n := len(b)
	return fmt.Errorf("modbus: CRC is 0x%04X, want 0x%04X", uint16(b[n-2])|uint16(b[n-1])<<8, CRC(b[:n-2]))
}

// CheckReply looks for the module's answer to req in the bytes read back so far (stale or garbled bytes
// before it are skipped). It returns done=true with a nil error when they contain the exact echo of req,
// done=true with an *ExceptionError when they contain a valid exception response from req's slave, and
// done=false while neither has arrived (the caller reads more, or gives up at its timeout and reports
// DescribeReply).
func CheckReply(req, got []byte) (done bool, err error) {
	if len(req) != FrameLen {
		return true, fmt.Errorf("modbus: request is %d bytes, want %d", len(req), FrameLen)
	}
	for i := range got {
		rest := got[i:]
		if bytes.HasPrefix(rest, req) {
			return true, nil
		}
		if len(rest) >= ExceptionLen && rest[0] == req[0] && rest[1] == req[1]|0x80 && crcOK(rest[:ExceptionLen]) {
			return true, &ExceptionError{Slave: rest[0], Function: rest[1], Code: rest[2]}
		}
	}
	return false, nil
}

// DescribeReply explains why got is not the echo of req, for a receipt or a log line.
func DescribeReply(req, got []byte) string {
	switch {
	case len(got) == 0:
		return "no reply"
	case len(got) < FrameLen:
		return fmt.Sprintf("incomplete reply % X", got)
	}
	f, err := Decode(got[:FrameLen])
	if err != nil {
		return fmt.Sprintf("reply % X: %v", got, err)
	}
	want, _ := Decode(req)
	return fmt.Sprintf("reply % X (%s) does not echo the request (%s)", got, f, want)
}
