(() => {
  let stdinText;
  const input = () => (stdinText === undefined ? (stdinText = std.in.readAsString()) : stdinText);
  const fs = {
    readFileSync(file) {
      if (file === 0 || file === "/dev/stdin") return input();
      throw new Error("ENOENT: no such file or directory, open '" + file + "'");
    },
  };
  const readline = {
    createInterface() {
      const handlers = {};
      const rl = { on(event, f) { handlers[event] = f; return rl; }, close() {} };
      Promise.resolve().then(() => {
        const lines = input().split("\n");
        if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
        for (const line of lines) if (handlers.line) handlers.line(line.replace(/\r$/, ""));
        if (handlers.close) handlers.close();
      });
      return rl;
    },
  };
  const write = (stream) => (text) => { stream.puts(String(text)); return true; };
  globalThis.process = {
    argv: ["node", "main.js"],
    env: {},
    stdin: {},
    stdout: { write: write(std.out) },
    stderr: { write: write(std.err) },
    exit(code) { std.out.flush(); std.exit(code === undefined ? 0 : code); },
  };
  const modules = { fs, readline };
  globalThis.require = (name) => {
    const module = modules[String(name).replace(/^node:/, "")];
    if (module === undefined) throw new Error("Cannot find module '" + name + "'");
    return module;
  };
})();
