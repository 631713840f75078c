// Precompiled header for the data-plane modules: Asio and Beast dominate their compile time.
#pragma once
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
