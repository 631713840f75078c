// A config file's text as one YAML document (see yaml_document.h).
#include "yaml_document.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <string>
#include <system_error>
#include <vector>

namespace apigw::config {
namespace {

Position mark_position(const std::string& file, const YAML::Mark& mark) {
  if (mark.is_null()) return {file, 0, 0};
  return {file, mark.line + 1, mark.column + 1};
}

// Where the documents of a stream start (the marks of their root nodes), without building them.
class DocumentStarts : public YAML::EventHandler {
 public:
  const std::vector<YAML::Mark>& marks() const { return marks_; }

  void OnDocumentStart(const YAML::Mark&) override { in_root_ = false; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}

 private:
  void node(const YAML::Mark& mark) {
    if (in_root_) return;
    in_root_ = true;
    marks_.push_back(mark);
  }

  std::vector<YAML::Mark> marks_;
  bool in_root_ = false;
};

}  // namespace

// Not YAML::LoadAll:
// where a node should start, yaml-cpp 0.7's parser reports a ',' as an empty document without consuming it, and
// LoadAll then loops forever, adding a null document each turn. Up to three documents are scanned instead: a
// second one is an error, and one that starts where the one before it started is that stuck parser.
std::optional<YAML::Node> parse_document(YamlReader& reader, std::string_view text) {
  try {
    const std::string input(text);
    std::istringstream stream(input);
    YAML::Parser parser(stream);
    DocumentStarts documents;
    for (int i = 0; i < 3 && parser.HandleNextDocument(documents); ++i) {
      const std::vector<YAML::Mark>& marks = documents.marks();
      if (marks.size() >= 2 && marks[marks.size() - 1].pos == marks[marks.size() - 2].pos) {
        const YAML::Mark& at = marks.back();
        const std::size_t pos = static_cast<std::size_t>(at.pos);
        reader.error(mark_position(reader.file(), at),
                     pos < input.size() ? "YAML syntax error: unexpected '" + input.substr(pos, 1) + "'"
                                        : std::string("YAML syntax error"));
        return std::nullopt;
      }
    }
    if (documents.marks().size() > 1) {
      reader.error(mark_position(reader.file(), documents.marks()[1]),
                   "a config file holds one YAML document; found a second one");
    }
    return YAML::Load(input);
  } catch (const YAML::Exception& e) {
    reader.error(mark_position(reader.file(), e.mark), "YAML syntax error: " + e.msg);
    return std::nullopt;
  }
}

}  // namespace apigw::config
