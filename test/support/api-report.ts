import { join } from 'node:path';
import ts from 'typescript';

/**
 * The public surface of the package as users get it: lib/index.ts and lib/testing/index.ts compiled
 * to declarations with the build's settings (tsconfig.build.json, so `stripInternal` applies), kept
 * in memory, then read back as a user's compiler would. Each export is printed without comments and
 * without private members, so that a new doc comment or a private field changes nothing, while a new,
 * removed or changed export or public member does.
 */
export interface ApiReport {
  /** The report text: every export of each entry point, sorted by name. */
  text: string;
  /** Type errors in the shipped declarations, as a user's compiler without skipLibCheck sees them. */
  declarationErrors: string[];
  /** Exports without a doc comment: a user's editor would show nothing for them. */
  undocumented: string[];
}

const ENTRIES = [
  { specifier: 'nestjs-async-endpoints', source: 'lib/index.ts', declaration: 'index.d.ts' },
  { specifier: 'nestjs-async-endpoints/testing', source: 'lib/testing/index.ts', declaration: 'testing/index.d.ts' },
] as const;

export function buildApiReport(root: string): ApiReport {
  const outDir = join(root, '.api-report-in-memory');
  // Both programs read the same dependency declarations (Nest, Node, ioredis): parsed once.
  const dependencies = new Map<string, ts.SourceFile>();
  const declarations = emitDeclarations(root, outDir, dependencies);
  const program = ts.createProgram({
    rootNames: ENTRIES.map((entry) => join(outDir, entry.declaration)),
    options: {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      strict: true,
      types: ['node'],
      noEmit: true,
    },
    host: inMemoryHost(declarations, dependencies),
  });
  const checker = program.getTypeChecker();
  const entryExports = ENTRIES.map((entry) =>
    checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(join(outDir, entry.declaration))!)!),
  );
  // A type the testing entry uses is public when the main entry exports it.
  const exportedTargets = new Set(entryExports.flat().map((symbol) => resolve(checker, symbol)));
  const sections = ENTRIES.map((entry, index) => {
    const described = describeExports(checker, entryExports[index]!, exportedTargets, outDir);
    return `# ${entry.specifier}\n\n${described.join('\n\n')}\n`;
  });
  const declarationErrors = program
    .getSourceFiles()
    .filter((file) => declarations.has(file.fileName))
    .flatMap((file) => program.getSemanticDiagnostics(file))
    .map(
      (diagnostic) =>
        `${diagnostic.file?.fileName.slice(outDir.length + 1)}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`,
    );
  const undocumented = entryExports
    .flat()
    .filter((symbol) => resolve(checker, symbol).getDocumentationComment(checker).length === 0)
    .map((symbol) => symbol.name);
  return { text: sections.join('\n'), declarationErrors, undocumented };
}

function emitDeclarations(root: string, outDir: string, dependencies: Map<string, ts.SourceFile>): Map<string, string> {
  const config = ts.getParsedCommandLineOfConfigFile(
    join(root, 'tsconfig.build.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  )!;
  const options: ts.CompilerOptions = {
    ...config.options,
    outDir,
    declaration: true,
    emitDeclarationOnly: true,
    declarationMap: false,
    sourceMap: false,
    incremental: false,
    // The same declarations, without a full type check of lib/ (the lint's job): seconds faster.
    noCheck: true,
  };
  const host = ts.createCompilerHost(options);
  host.getSourceFile = cachedDependencies(host.getSourceFile.bind(host), dependencies);
  const program = ts.createProgram({ rootNames: ENTRIES.map((entry) => join(root, entry.source)), options, host });
  const files = new Map<string, string>();
  const result = program.emit(undefined, (fileName, text) => files.set(fileName, text), undefined, true);
  // Type errors in lib/ are the lint's to report (tsc --noEmit); here only what stops the declarations.
  if (result.diagnostics.length > 0) {
    throw new Error(
      ts.formatDiagnostics(result.diagnostics, {
        getCanonicalFileName: (f) => f,
        getCurrentDirectory: () => root,
        getNewLine: () => '\n',
      }),
    );
  }
  return files;
}

/** The real file system, with the emitted declarations laid over it. */
function inMemoryHost(files: Map<string, string>, dependencies: Map<string, ts.SourceFile>): ts.CompilerHost {
  const host = ts.createCompilerHost({});
  const getSourceFile = cachedDependencies(host.getSourceFile.bind(host), dependencies);
  return {
    ...host,
    fileExists: (name) => files.has(name) || ts.sys.fileExists(name),
    directoryExists: (name) =>
      [...files.keys()].some((file) => file.startsWith(`${name}/`)) || ts.sys.directoryExists(name),
    readFile: (name) => files.get(name) ?? ts.sys.readFile(name),
    getSourceFile: (name, language, onError) => {
      const text = files.get(name);
      return text === undefined ? getSourceFile(name, language, onError) : ts.createSourceFile(name, text, language);
    },
  };
}

function cachedDependencies(
  getSourceFile: ts.CompilerHost['getSourceFile'],
  cache: Map<string, ts.SourceFile>,
): ts.CompilerHost['getSourceFile'] {
  return (name, language, onError) => {
    if (!name.includes('/node_modules/')) return getSourceFile(name, language, onError);
    const format = typeof language === 'object' ? language.impliedNodeFormat : undefined;
    const key = `${name}:${format}`;
    const file = cache.get(key) ?? getSourceFile(name, language, onError);
    if (file) cache.set(key, file);
    return file;
  };
}

const printer = ts.createPrinter({ removeComments: true });

function describeExports(
  checker: ts.TypeChecker,
  exported: ts.Symbol[],
  exportedTargets: Set<ts.Symbol>,
  outDir: string,
): string[] {
  const notExported = new Map<string, string>();
  const described = [...exported]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((symbol) => {
      const target = resolve(checker, symbol);
      const declarations = (target.declarations ?? []).map((declaration) => publicShape(declaration));
      for (const declaration of declarations) {
        collectReferences(checker, declaration.original, (referenced) => {
          const home = referenced.declarations?.[0]?.getSourceFile().fileName;
          if (home?.startsWith(outDir) && !exportedTargets.has(referenced)) {
            notExported.set(referenced.name, home.slice(outDir.length + 1));
          }
        });
      }
      const renamed = symbol.name === target.name ? '' : ` (exported as ${symbol.name})`;
      return declarations.map((declaration) => declaration.text).join('\n') + renamed;
    });
  const unlisted = [...notExported].sort(([a], [b]) => a.localeCompare(b)).map(([name, home]) => `- ${name} (${home})`);
  return [...described, `Referenced by the exports above but not exported:\n${unlisted.join('\n') || '- none'}`];
}

function resolve(checker: ts.TypeChecker, symbol: ts.Symbol): ts.Symbol {
  return symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
}

/** A declaration as printed in the report: for a class, only its non-private members. */
function publicShape(declaration: ts.Declaration): { text: string; original: ts.Node } {
  const file = declaration.getSourceFile();
  let node: ts.Node = declaration;
  if (ts.isVariableDeclaration(declaration)) node = declaration.parent.parent;
  if (ts.isClassDeclaration(declaration)) {
    node = ts.factory.updateClassDeclaration(
      declaration,
      declaration.modifiers,
      declaration.name,
      declaration.typeParameters,
      declaration.heritageClauses,
      declaration.members.filter((member) => !isPrivate(member)),
    );
  }
  const text = printer
    .printNode(ts.EmitHint.Unspecified, node, file)
    .replace(/^export (declare )?/, '')
    .replace(/^declare /, '');
  return { text, original: declaration };
}

function isPrivate(member: ts.ClassElement): boolean {
  return (ts.getCombinedModifierFlags(member) & ts.ModifierFlags.Private ||
    (member.name !== undefined && ts.isPrivateIdentifier(member.name))) as boolean;
}

/** Calls `found` with the symbol of every type or value a declaration's public parts name. */
function collectReferences(checker: ts.TypeChecker, node: ts.Node, found: (symbol: ts.Symbol) => void): void {
  if (ts.isClassElement(node) && isPrivate(node)) return;
  const name = ts.isTypeReferenceNode(node)
    ? node.typeName
    : ts.isExpressionWithTypeArguments(node)
      ? node.expression
      : ts.isTypeQueryNode(node)
        ? node.exprName
        : undefined;
  const symbol = name && checker.getSymbolAtLocation(name);
  if (symbol && !(symbol.flags & ts.SymbolFlags.TypeParameter)) found(resolve(checker, symbol));
  ts.forEachChild(node, (child) => collectReferences(checker, child, found));
}
