// The Sendmail milter protocol (version 6), as spoken by Postfix >= 2.6.
//
// Wire format: every packet is a 4-byte big-endian length (counting the
// command byte), one command byte, then `length - 1` bytes of data. Strings
// inside the data are NUL-terminated. This file holds the constants (from the
// documented protocol, libmilter's mfdef.h), an incremental packet reader with
// a size budget, and encoders for the replies mamori sends.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mamori::mail::milter {

inline constexpr uint32_t kProtocolVersion = 6;

// MTA -> milter commands (SMFIC_*).
enum Command : char {
  kAbort = 'A',
  kBody = 'B',
  kConnect = 'C',
  kMacro = 'D',
  kBodyEob = 'E',
  kHelo = 'H',
  kQuitNc = 'K',
  kHeader = 'L',
  kMail = 'M',
  kEoh = 'N',
  kOptneg = 'O',
  kQuit = 'Q',
  kRcpt = 'R',
  kData = 'T',
  kUnknown = 'U',
};

// milter -> MTA replies (SMFIR_*).
enum Reply : char {
  kAddRcpt = '+',
  kDelRcpt = '-',
  kAddRcptPar = '2',
  kShutdown = '4',
  kAccept = 'a',
  kReplBody = 'b',
  kContinue = 'c',
  kDiscard = 'd',
  kChgFrom = 'e',
  kConnFail = 'f',
  kAddHeader = 'h',
  kInsHeader = 'i',
  kSetSymList = 'l',
  kChgHeader = 'm',
  kProgress = 'p',
  kQuarantine = 'q',
  kReject = 'r',
  kSkip = 's',
  kTempfail = 't',
  kReplyCode = 'y',
};

// Actions the milter may take (SMFIF_*), negotiated in OPTNEG.
inline constexpr uint32_t kActAddHeaders = 0x01;
inline constexpr uint32_t kActChangeBody = 0x02;
inline constexpr uint32_t kActAddRcpt = 0x04;
inline constexpr uint32_t kActDelRcpt = 0x08;
inline constexpr uint32_t kActChangeHeaders = 0x10;
inline constexpr uint32_t kActQuarantine = 0x20;
inline constexpr uint32_t kActChangeFrom = 0x40;
inline constexpr uint32_t kActAddRcptPar = 0x80;
inline constexpr uint32_t kActSetSymList = 0x100;

// Protocol steps the MTA may skip or not wait for (SMFIP_*).
inline constexpr uint32_t kNoConnect = 0x1;
inline constexpr uint32_t kNoHelo = 0x2;
inline constexpr uint32_t kNoMail = 0x4;
inline constexpr uint32_t kNoRcpt = 0x8;
inline constexpr uint32_t kNoBody = 0x10;
inline constexpr uint32_t kNoHeaders = 0x20;
inline constexpr uint32_t kNoEoh = 0x40;
inline constexpr uint32_t kNrHeader = 0x80;
inline constexpr uint32_t kNoUnknown = 0x100;
inline constexpr uint32_t kNoData = 0x200;
inline constexpr uint32_t kSkip_ = 0x400;
inline constexpr uint32_t kRcptRej = 0x800;
inline constexpr uint32_t kNrConnect = 0x1000;
inline constexpr uint32_t kNrHelo = 0x2000;
inline constexpr uint32_t kNrMail = 0x4000;
inline constexpr uint32_t kNrRcpt = 0x8000;
inline constexpr uint32_t kNrData = 0x10000;
inline constexpr uint32_t kNrUnknown = 0x20000;
inline constexpr uint32_t kNrEoh = 0x40000;
inline constexpr uint32_t kNrBody = 0x80000;
inline constexpr uint32_t kHeaderLeadingSpace = 0x100000;

// One decoded packet. `data` excludes the length and the command byte.
struct Packet {
  char command = 0;
  std::string data;
};

// Accumulates bytes from the socket and cuts them into packets.
// Thread-compatible. A packet longer than max_packet_bytes, or a zero length,
// is a protocol error (kResourceExhausted / kInvalidArgument) and the reader
// stays failed: the connection must be closed.
class PacketReader {
 public:
  explicit PacketReader(uint32_t max_packet_bytes) : max_(max_packet_bytes) {}
  // Appends received bytes.
  void Append(std::string_view bytes);
  // Returns the next complete packet, std::nullopt if more bytes are needed,
  // or an error.
  Result<std::optional<Packet>> Next();
  // Bytes buffered but not yet returned as packets.
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  uint32_t max_;
  std::string buf_;
  size_t pos_ = 0;
  Status failed_;
};

// Protocol stages a macro list belongs to (SMFIM_*).
inline constexpr uint32_t kStageConnect = 0;
inline constexpr uint32_t kStageHelo = 1;
inline constexpr uint32_t kStageMail = 2;
inline constexpr uint32_t kStageRcpt = 3;
inline constexpr uint32_t kStageData = 4;
inline constexpr uint32_t kStageEom = 5;
inline constexpr uint32_t kStageEoh = 6;

// OPTNEG payload: protocol version, action flags, protocol-step flags, and
// (milter -> MTA, with kActSetSymList) the macro names wanted at each stage.
// Postfix sends exactly the listed macros; a stage left out, or given an
// empty list, gets the MTA's configured defaults.
struct Options {
  uint32_t version = 0;
  uint32_t actions = 0;
  uint32_t protocol = 0;
  std::vector<std::pair<uint32_t, std::string>> macro_lists;  // stage, "a {b} c"
};
Result<Options> ParseOptions(std::string_view data);

// Splits NUL-terminated strings ("a\0b\0" -> {"a","b"}). A final string
// without its NUL is an error (the MTA always terminates them).
Result<std::vector<std::string_view>> SplitStrings(std::string_view data);

// Macro packet: the command the macros belong to, then name/value pairs.
struct Macros {
  char for_command = 0;
  std::vector<std::pair<std::string_view, std::string_view>> values;
};
Result<Macros> ParseMacros(std::string_view data);

// Appends one encoded packet to *out.
void AppendPacket(std::string* out, char command, std::string_view data);
void AppendOptions(std::string* out, const Options& options);
void AppendAddHeader(std::string* out, std::string_view name, std::string_view value);
// index is the 1-based occurrence of `name`; an empty value deletes it.
void AppendChangeHeader(std::string* out, uint32_t index, std::string_view name,
                        std::string_view value);
void AppendQuarantine(std::string* out, std::string_view reason);
// `reply` is a full SMTP reply, e.g. "451 4.7.1 try again later".
void AppendReplyCode(std::string* out, std::string_view reply);

}  // namespace mamori::mail::milter
