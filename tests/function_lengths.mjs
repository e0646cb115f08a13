// Every function of the TypeScript files named on the command line, with its length in lines,
// as one JSON array on stdout: [{file, line, name, lines}]. Read with the TypeScript compiler's
// own parser (vscode-extension/node_modules/typescript), so every kind with a body counts:
// declarations, methods, constructors, accessors, arrow functions, function expressions.
// Used by tests/test_function_length.py.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const ts = createRequire(new URL('../vscode-extension/package.json', import.meta.url))('typescript');

/** What a reader would call the function: its own name, else what it is assigned to. */
function nameOf(node) {
  if (node.name !== undefined) {
    return node.name.getText();
  }
  if (ts.isConstructorDeclaration(node)) {
    return 'constructor';
  }
  const parent = node.parent;
  if ((ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent) || ts.isPropertyDeclaration(parent)) && parent.name !== undefined) {
    return parent.name.getText();
  }
  return ts.isArrowFunction(node) ? '(arrow function)' : '(function expression)';
}

const found = [];
for (const file of process.argv.slice(2)) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && node.body !== undefined) {
      // From the first modifier or decorator (`export async function`) to the closing brace.
      const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
      const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
      found.push({ file, line: first + 1, name: nameOf(node), lines: last - first + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
process.stdout.write(JSON.stringify(found));
