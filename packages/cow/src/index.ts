export { CowHandler, type CowHandlerParts } from './cow-handler.js';
