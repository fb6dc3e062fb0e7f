#include "mail/milter_protocol.h"

#include <gtest/gtest.h>

namespace mamori::mail::milter {
namespace {

std::string Pkt(char cmd, std::string_view data) {
  std::string s;
  AppendPacket(&s, cmd, data);
  return s;
}

TEST(MilterProtocol, EncodesLengthBigEndianIncludingCommand) {
  std::string s = Pkt('c', "");
  ASSERT_EQ(s.size(), 5u);
  EXPECT_EQ(s, std::string("\0\0\0\1c", 5));
  s = Pkt('h', std::string(300, 'x'));
  EXPECT_EQ(static_cast<unsigned char>(s[2]), 1);
  EXPECT_EQ(static_cast<unsigned char>(s[3]), 45);  // 301 = 0x12d
}

TEST(MilterProtocol, ReaderSplitsPacketsAcrossArbitraryChunks) {
  std::string wire =
      Pkt('M', std::string("<a@b>\0", 6)) + Pkt('R', std::string("<c@d>\0", 6)) + Pkt('E', "");
  for (size_t step = 1; step <= wire.size(); ++step) {
    PacketReader r(1024);
    std::vector<Packet> got;
    for (size_t i = 0; i < wire.size(); i += step) {
      r.Append(std::string_view(wire).substr(i, step));
      while (true) {
        auto p = r.Next();
        ASSERT_TRUE(p.ok());
        if (!p->has_value()) break;
        got.push_back(**p);
      }
    }
    ASSERT_EQ(got.size(), 3u) << "step " << step;
    EXPECT_EQ(got[0].command, 'M');
    EXPECT_EQ(got[1].data, std::string("<c@d>\0", 6));
    EXPECT_EQ(got[2].command, 'E');
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(MilterProtocol, ReaderRejectsOversizedAndZeroLength) {
  PacketReader r(100);
  r.Append(std::string("\0\0\1\0", 4));  // 256 > 100
  auto p = r.Next();
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kResourceExhausted);
  r.Append(Pkt('c', ""));
  EXPECT_FALSE(r.Next().ok());  // stays failed

  PacketReader z(100);
  z.Append(std::string("\0\0\0\0", 4));
  EXPECT_EQ(z.Next().status().code(), StatusCode::kInvalidArgument);
}

// Encodes `options` as an OPTNEG packet and returns its data, as read back.
std::string OptnegData(const Options& options) {
  std::string bytes;
  AppendOptions(&bytes, options);
  PacketReader r(100);
  r.Append(bytes);
  auto p = r.Next();
  if (!p.ok() || !p->has_value() || (*p)->command != kOptneg) return "";
  return (*p)->data;
}

TEST(MilterProtocol, ParsesOptionsAndMacros) {
  auto opts = ParseOptions(OptnegData(Options{6, 0x1ff, 0x1fffff, {}}));
  ASSERT_TRUE(opts.ok());
  EXPECT_EQ(opts->version, 6u);
  EXPECT_EQ(opts->actions, 0x1ffu);
  EXPECT_EQ(opts->protocol, 0x1fffffu);
  EXPECT_FALSE(ParseOptions("short").ok());

  // Macro lists after the three words: stage, then a NUL-terminated list.
  const std::string with_lists =
      OptnegData(Options{6, 0x100, 0, {{2, "i {client_addr}"}, {5, "i"}}});
  auto lists = ParseOptions(with_lists);
  ASSERT_TRUE(lists.ok());
  ASSERT_EQ(lists->macro_lists.size(), 2u);
  EXPECT_EQ(lists->macro_lists[0].first, 2u);
  EXPECT_EQ(lists->macro_lists[0].second, "i {client_addr}");
  EXPECT_EQ(lists->macro_lists[1].second, "i");
  std::string truncated = with_lists.substr(0, with_lists.size() - 1);  // last NUL gone
  EXPECT_EQ(ParseOptions(truncated).status().code(), StatusCode::kInvalidArgument);

  const std::string macro_data("E{i}\0ABC123\0j\0host\0", 19);  // views point into it
  auto m = ParseMacros(macro_data);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->for_command, 'E');
  ASSERT_EQ(m->values.size(), 2u);
  EXPECT_EQ(m->values[0].first, "{i}");
  EXPECT_EQ(m->values[0].second, "ABC123");
  EXPECT_FALSE(ParseMacros(std::string("E{i}\0", 5)).ok());  // name without value
  EXPECT_FALSE(SplitStrings(std::string("abc", 3)).ok());    // no NUL
}

TEST(MilterProtocol, HeaderRepliesCannotInjectLines) {
  std::string out;
  AppendAddHeader(&out, "X-Test", "a\r\nBcc: evil@x");
  EXPECT_EQ(out.find('\n'), std::string::npos);
  out.clear();
  AppendChangeHeader(&out, 2, "To", "");
  // length 4+3+1 + 1 = 9: index, "To\0", "\0", plus the command byte
  EXPECT_EQ(out, std::string("\0\0\0\x09m\0\0\0\2To\0\0", 13));
}

}  // namespace
}  // namespace mamori::mail::milter
