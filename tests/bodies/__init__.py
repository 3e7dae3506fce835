"""Tests of the body toolkit: multipart, urlencoded, ranges, conditional, coding, HTTP dates."""
