// The 2-D test functions of optbook.landscapes, term for term (same operation
// order, so float64 results agree with NumPy to the last bit or two).
// Each maker returns {value(x, y), grad(x, y) -> [gx, gy], hessianDiag(x, y)
// -> [hxx, hyy], hessian(x, y) -> [[hxx, hxy], [hxy, hyy]]}.

function quadratic({ kappa = 10, c = 1, s = 0 }) {
  // f = (u^2 + kappa v^2) / 2, (u, v) the coordinates rotated by the angle (c, s)
  const hxx = c * c + kappa * s * s;
  const hyy = s * s + kappa * c * c;
  const hxy = (1.0 - kappa) * c * s;
  return {
    value(x, y) { const u = c * x + s * y, v = -s * x + c * y; return 0.5 * (u * u + kappa * v * v); },
    grad(x, y) { return [hxx * x + hxy * y, hxy * x + hyy * y]; },
    hessianDiag() { return [hxx, hyy]; },
    hessian() { return [[hxx, hxy], [hxy, hyy]]; },
  };
}

function rosenbrock({ a = 1, b = 100 }) {
  // f = (a - x)^2 + b (y - x^2)^2
  return {
    value(x, y) { const r = y - x * x; return (a - x) ** 2 + b * r * r; },
    grad(x, y) { const r = y - x * x; return [-2.0 * (a - x) - 4.0 * b * x * r, 2.0 * b * r]; },
    hessianDiag(x, y) { return [2.0 - 4.0 * b * y + 12.0 * b * x * x, 2.0 * b]; },
    hessian(x, y) { return [[2.0 - 4.0 * b * y + 12.0 * b * x * x, -4.0 * b * x], [-4.0 * b * x, 2.0 * b]]; },
  };
}

function bealeTerms(x, y) {
  return [1.5 - x + x * y, 2.25 - x + x * y * y, 2.625 - x + x * y * y * y];
}

function beale() {
  // f = (1.5 - x + xy)^2 + (2.25 - x + xy^2)^2 + (2.625 - x + xy^3)^2
  const hessianDiag = (x, y) => {
    const [, t2, t3] = bealeTerms(x, y);
    const y2 = y * y;
    const hxx = 2.0 * ((y - 1.0) ** 2 + (y2 - 1.0) ** 2 + (y2 * y - 1.0) ** 2);
    const hyy = 2.0 * x * (x + 2.0 * t2 + 4.0 * x * y2 + 6.0 * y * t3 + 9.0 * x * y2 * y2);
    return [hxx, hyy];
  };
  return {
    value(x, y) { const [t1, t2, t3] = bealeTerms(x, y); return t1 * t1 + t2 * t2 + t3 * t3; },
    grad(x, y) {
      const [t1, t2, t3] = bealeTerms(x, y);
      const y2 = y * y;
      return [2.0 * (t1 * (y - 1.0) + t2 * (y2 - 1.0) + t3 * (y2 * y - 1.0)),
              2.0 * x * (t1 + 2.0 * y * t2 + 3.0 * y2 * t3)];
    },
    hessianDiag,
    hessian(x, y) {
      // d/dy of df/dx = 2 (t1 + x (y-1)) + 2 (t2 (2y) + 2xy (y^2-1)) + 2 (t3 (3y^2) + 3xy^2 (y^3-1))
      const [t1, t2, t3] = bealeTerms(x, y);
      const y2 = y * y;
      const hxy = 2.0 * (t1 + x * (y - 1.0)) + 2.0 * (2.0 * y * t2 + 2.0 * x * y * (y2 - 1.0))
        + 2.0 * (3.0 * y2 * t3 + 3.0 * x * y2 * (y2 * y - 1.0));
      const [hxx, hyy] = hessianDiag(x, y);
      return [[hxx, hxy], [hxy, hyy]];
    },
  };
}

function saddle() {
  // f = x^2/2 + y^4/4 - y^2/2
  return {
    value(x, y) { const y2 = y * y; return 0.5 * x * x + 0.25 * y2 * y2 - 0.5 * y2; },
    grad(x, y) { return [x, y * y * y - y]; },
    hessianDiag(x, y) { return [1.0, 3.0 * y * y - 1.0]; },
    hessian(x, y) { return [[1.0, 0.0], [0.0, 3.0 * y * y - 1.0]]; },
  };
}

function himmelblau() {
  // f = (x^2 + y - 11)^2 + (x + y^2 - 7)^2
  return {
    value(x, y) { const a = x * x + y - 11.0, b = x + y * y - 7.0; return a * a + b * b; },
    grad(x, y) {
      const a = x * x + y - 11.0, b = x + y * y - 7.0;
      return [4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b];
    },
    hessianDiag(x, y) { return [12.0 * x * x + 4.0 * y - 42.0, 12.0 * y * y + 4.0 * x - 26.0]; },
    hessian(x, y) {
      return [[12.0 * x * x + 4.0 * y - 42.0, 4.0 * x + 4.0 * y], [4.0 * x + 4.0 * y, 12.0 * y * y + 4.0 * x - 26.0]];
    },
  };
}

export const LANDSCAPES = { quadratic, rosenbrock, beale, saddle, himmelblau };

/** The functions of a landscape spec {name, params, xlim, ylim, x0, min, ...} from Python. */
export function makeLandscape(land) {
  const maker = LANDSCAPES[land.name];
  if (!maker) throw new Error(`optbook figures: unknown landscape ${JSON.stringify(land.name)}`);
  return { ...land, ...maker(land.params || {}) };
}
