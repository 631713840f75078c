// Query-string parameters (see query.h).
#include "apigw/http/query.h"

#include "apigw/http/request_target.h"

namespace apigw::http {

QueryParameter split_query_parameter(std::string_view parameter) {
  const std::size_t equals = parameter.find('=');
  if (equals == std::string_view::npos) return {parameter, {}, false};
  return {parameter.substr(0, equals), parameter.substr(equals + 1), true};
}

std::optional<QueryParameter> find_query_parameter(std::string_view query, std::string_view name) {
  std::optional<QueryParameter> found;
  for_each_query_parameter(query, [&](std::string_view parameter) {
    const QueryParameter split = split_query_parameter(parameter);
    if (!found && split.name == name) found = split;
  });
  return found;
}

std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  const std::optional<QueryParameter> parameter = find_query_parameter(query, name);
  if (!parameter) return std::nullopt;
  return percent_decode(parameter->value, true);
}

std::string redact_query_parameter(std::string_view target, std::string_view name) {
  const std::size_t question = target.find('?');
  if (question == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, question + 1));
  bool first = true;
  for_each_query_parameter(target.substr(question + 1), [&](std::string_view parameter) {
    if (!first) out.push_back('&');
    first = false;
    const QueryParameter split = split_query_parameter(parameter);
    if (split.name == name && split.has_value) {
      out.append(split.name).append("=REDACTED");
    } else {
      out.append(parameter);
    }
  });
  return out;
}

}  // namespace apigw::http
