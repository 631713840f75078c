// The translation unit that builds the shared precompiled header (src/net_pch.h).
