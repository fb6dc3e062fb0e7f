// Used only while the detection engine (mamori_detect) is not built: every
// inspection fails, so inspected categories fail closed.
#include "egress/inspector.h"

namespace mamori::egress {

Result<std::unique_ptr<InspectorFactory>> NewDetectInspectorFactory(const HashKey&) {
  return Unavailable("the detection engine (src/detect) is not built into this binary");
}

}  // namespace mamori::egress
