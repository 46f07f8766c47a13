"""CEF parsing, CommonSecurityLog mapping and the Faust app that applies them."""
