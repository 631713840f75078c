// A listener context as Asio's SSL context, for the admin listener, which serves through Beast's SSL stream
// (its traffic is light, and its code is Beast's throughout).
#pragma once

#include <boost/asio/ssl/context.hpp>

#include "apigw/net/tls.h"

namespace apigw::net {

boost::asio::ssl::context& asio_context(TlsServerContext& context);

}  // namespace apigw::net
