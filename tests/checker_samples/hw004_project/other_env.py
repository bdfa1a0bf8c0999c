"""HW004: where this file's own imports are not installed (a pre-commit environment), a module that is
neither in the project nor installed may just be one of the project's dependencies: not reported."""

import a_dependency_not_installed_here  # noqa: F401
import uvicorn

if __name__ == "__main__":
    # Compliant here: this environment is not the project's, so "not installed" proves nothing.
    uvicorn.run("another_dependency_not_installed_here.web:app")
