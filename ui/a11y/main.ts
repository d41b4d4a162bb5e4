// The page with mocked commands: the mock first, then the real shell.
import "./fixtures";
import "../src/main";
