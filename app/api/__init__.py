"""HTTP doors: parse the request, call a service, shape the answer."""
