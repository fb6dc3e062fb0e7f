#include "common/status.h"

#include <gtest/gtest.h>

namespace mamori {
namespace {

Result<int> ParsePositive(int v) {
  if (v <= 0) return InvalidArgument("value must be positive, got " + std::to_string(v));
  return v;
}

Status UsesMacros(int v, int* out) {
  ASSIGN_OR_RETURN(int x, ParsePositive(v));
  *out = x * 2;
  return Status::Ok();
}

TEST(Status, OkAndError) {
  EXPECT_TRUE(Status::Ok().ok());
  Status s = NotFound("rules/x.yaml: no such file");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "NOT_FOUND: rules/x.yaml: no such file");
  EXPECT_EQ(s.WithContext("loading rules").message(), "loading rules: rules/x.yaml: no such file");
}

TEST(Result, ValueOrError) {
  int out = 0;
  EXPECT_TRUE(UsesMacros(4, &out).ok());
  EXPECT_EQ(out, 8);
  Status s = UsesMacros(-1, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(out, 8);
}

}  // namespace
}  // namespace mamori
